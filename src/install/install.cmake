# Included by the top-level CMakeLists.txt after the convoy and convoy_cli targets exist:
# the generated public headers, the man page, and what `cmake --install build --prefix P` puts
# in P: bin/convoy, lib/libconvoy.a, include/convoy/*.h, share/man/man1/convoy.1,
# share/man/man5/convoy-model.5 and convoy-hdf5.5, share/bash-completion/completions/convoy,
# share/zsh/site-functions/_convoy,
# lib/pkgconfig/convoy.pc and lib/cmake/convoy/ (find_package(convoy) -> convoy::convoy).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# <convoy/version.h> from project(VERSION); <convoy/convoy.h> includes every public header
configure_file(${PROJECT_SOURCE_DIR}/include/convoy/version.h.in
  ${PROJECT_BINARY_DIR}/include/convoy/version.h @ONLY)
file(GLOB CONVOY_PUBLIC_HEADERS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/include/convoy/*.h)
set(CONVOY_UMBRELLA_INCLUDES "#include \"convoy/version.h\"\n")
foreach(h ${CONVOY_PUBLIC_HEADERS})
  get_filename_component(name ${h} NAME)
  string(APPEND CONVOY_UMBRELLA_INCLUDES "#include \"convoy/${name}\"\n")
endforeach()
configure_file(${PROJECT_SOURCE_DIR}/include/convoy/convoy.h.in
  ${PROJECT_BINARY_DIR}/include/convoy/convoy.h @ONLY)

# the man page, written by the program from its own command and flag tables
add_custom_command(OUTPUT ${PROJECT_BINARY_DIR}/convoy.1
  COMMAND sh -c "\"$<TARGET_FILE:convoy_cli>\" --man > convoy.1.tmp && mv convoy.1.tmp convoy.1"
  DEPENDS convoy_cli WORKING_DIRECTORY ${PROJECT_BINARY_DIR} VERBATIM
  COMMENT "Writing the man page convoy.1")
add_custom_target(convoy_man ALL DEPENDS ${PROJECT_BINARY_DIR}/convoy.1)

# a sanitized static library needs the sanitizer runtimes in whatever links it
if(CONVOY_SANITIZE)
  target_link_options(convoy INTERFACE -fsanitize=address,undefined)
endif()

install(TARGETS convoy EXPORT convoyTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS convoy_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${CONVOY_PUBLIC_HEADERS} ${PROJECT_BINARY_DIR}/include/convoy/version.h
  ${PROJECT_BINARY_DIR}/include/convoy/convoy.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/convoy)
install(FILES ${PROJECT_BINARY_DIR}/convoy.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)

# the shell completions and the section-5 manual pages, written by the program from the same
# tables as --help (`convoy --completion bash|zsh`, `convoy --man model|hdf5`) into the build
# folder and installed where bash-completion, zsh and man look for them: FILE|ARGUMENTS|DESTINATION
set(CONVOY_GENERATED
  "completion/bash/convoy|--completion bash|${CMAKE_INSTALL_DATADIR}/bash-completion/completions"
  "completion/zsh/_convoy|--completion zsh|${CMAKE_INSTALL_DATADIR}/zsh/site-functions"
  "convoy-model.5|--man model|${CMAKE_INSTALL_MANDIR}/man5"
  "convoy-hdf5.5|--man hdf5|${CMAKE_INSTALL_MANDIR}/man5")
foreach(entry ${CONVOY_GENERATED})
  string(REPLACE "|" ";" entry "${entry}")
  list(GET entry 0 file)
  list(GET entry 1 args)
  list(GET entry 2 dest)
  set(out ${PROJECT_BINARY_DIR}/${file})
  get_filename_component(out_dir ${out} DIRECTORY)
  add_custom_command(OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out_dir}
    COMMAND sh -c "\"$<TARGET_FILE:convoy_cli>\" ${args} > \"${out}.tmp\" && mv \"${out}.tmp\" \"${out}\""
    DEPENDS convoy_cli VERBATIM COMMENT "Writing ${file}")
  list(APPEND CONVOY_GENERATED_FILES ${out})
  install(FILES ${out} DESTINATION ${dest})
endforeach()
add_custom_target(convoy_generated ALL DEPENDS ${CONVOY_GENERATED_FILES})

# CMake package: find_package(convoy) finds the dependencies again, then imports convoy::convoy
set(CONVOY_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/convoy)
install(EXPORT convoyTargets NAMESPACE convoy:: DESTINATION ${CONVOY_CMAKE_DIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/convoyConfig.cmake.in
  ${PROJECT_BINARY_DIR}/convoyConfig.cmake INSTALL_DESTINATION ${CONVOY_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/convoyConfigVersion.cmake
  COMPATIBILITY SameMinorVersion) # 0.x: a minor release may change the API
install(FILES ${PROJECT_BINARY_DIR}/convoyConfig.cmake ${PROJECT_BINARY_DIR}/convoyConfigVersion.cmake
  DESTINATION ${CONVOY_CMAKE_DIR})

# pkg-config: libconvoy is static, so its dependencies are in Requires.private/Libs.private and
# consumers link with `pkg-config --static --libs convoy`. A dependency with a .pc file of its
# own is named there (Debian: mpi-c, hdf5-openmpi, libpng, libjpeg, zlib); otherwise the flags CMake
# found are written out. MPI is public: <convoy/dist.h> includes <mpi.h>.
find_package(PkgConfig QUIET)
set(CONVOY_PC_REQUIRES "")
set(CONVOY_PC_REQUIRES_PRIVATE "")
set(CONVOY_PC_CFLAGS "")
set(CONVOY_PC_LIBS_PRIVATE "")
function(convoy_pc_dependency public fallback_cflags fallback_libs)
  set(found "")
  if(PKG_CONFIG_FOUND)
    pkg_search_module(CONVOY_PC_DEP QUIET ${ARGN})
    if(CONVOY_PC_DEP_FOUND)
      set(found ${CONVOY_PC_DEP_MODULE_NAME})
    endif()
    unset(CONVOY_PC_DEP_FOUND CACHE)
  endif()
  if(found AND public)
    set(CONVOY_PC_REQUIRES "${CONVOY_PC_REQUIRES} ${found}" PARENT_SCOPE)
  elseif(found)
    set(CONVOY_PC_REQUIRES_PRIVATE "${CONVOY_PC_REQUIRES_PRIVATE} ${found}" PARENT_SCOPE)
  else()
    foreach(dir ${fallback_cflags})
      string(APPEND CONVOY_PC_CFLAGS " -I${dir}")
    endforeach()
    list(JOIN fallback_libs " " libs)
    set(CONVOY_PC_CFLAGS "${CONVOY_PC_CFLAGS}" PARENT_SCOPE)
    set(CONVOY_PC_LIBS_PRIVATE "${CONVOY_PC_LIBS_PRIVATE} ${libs}" PARENT_SCOPE)
  endif()
endfunction()
convoy_pc_dependency(TRUE "${MPI_C_INCLUDE_DIRS}" "${MPI_C_LIBRARIES}" mpi-c ompi-c mpich)
if(HDF5_IS_PARALLEL)
  convoy_pc_dependency(FALSE "" "${HDF5_C_LIBRARIES}" hdf5-openmpi hdf5-mpi hdf5-mpich)
else()
  convoy_pc_dependency(FALSE "" "${HDF5_C_LIBRARIES}" hdf5-serial hdf5)
endif()
convoy_pc_dependency(FALSE "" "${PNG_LIBRARIES}" libpng)
convoy_pc_dependency(FALSE "" "${JPEG_LIBRARIES}" libjpeg)
convoy_pc_dependency(FALSE "" "${ZLIB_LIBRARIES}" zlib)
if(CONVOY_OPENMP)
  string(APPEND CONVOY_PC_LIBS_PRIVATE " ${OpenMP_C_FLAGS}")
endif()
if(CONVOY_SANITIZE)
  string(APPEND CONVOY_PC_LIBS_PRIVATE " -fsanitize=address,undefined")
endif()
string(APPEND CONVOY_PC_LIBS_PRIVATE " -lm")
# prefix relative to the .pc file, so the installed tree can be moved (cmake --install --prefix)
file(RELATIVE_PATH CONVOY_PC_UP /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)
string(REGEX REPLACE "/$" "" CONVOY_PC_UP "${CONVOY_PC_UP}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/convoy.pc.in ${PROJECT_BINARY_DIR}/convoy.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/convoy.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
