# Included by the top-level CMakeLists.txt after the convoy and convoy_cli targets exist:
# the shared library, the generated public headers, the man pages, and what
# `cmake --install build --prefix P` puts in P: bin/convoy and the launchers bin/convoy-train,
# convoy-scaling, convoy-slurm; lib/libconvoy.a and lib/libconvoy.so (SONAME libconvoy.so.MAJOR);
# include/convoy/*.h; share/man/man1/convoy.1, share/man/man5/convoy-model.5 and convoy-hdf5.5;
# share/bash-completion/completions/convoy, share/zsh/site-functions/_convoy; share/convoy/ (the
# launchers' lib.sh, the example models); lib/pkgconfig/convoy.pc and lib/cmake/convoy/
# (find_package(convoy) -> convoy::convoy, static, and convoy::convoy_shared).
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

# libconvoy.so: the static library's objects (compiled position-independent), its dependencies
# linked in (DT_NEEDED), so a program links -lconvoy alone (and MPI: <convoy/dist.h> includes
# <mpi.h>). SONAME libconvoy.so.MAJOR: 0.x releases may change the ABI with the minor version.
add_library(convoy_shared SHARED $<TARGET_OBJECTS:convoy>)
add_library(convoy::convoy_shared ALIAS convoy_shared)
set_target_properties(convoy_shared PROPERTIES OUTPUT_NAME convoy VERSION ${PROJECT_VERSION}
  SOVERSION ${PROJECT_VERSION_MAJOR})
target_include_directories(convoy_shared PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
  $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/include> $<INSTALL_INTERFACE:include>)
target_link_libraries(convoy_shared PUBLIC MPI::MPI_C PRIVATE ${HDF5_C_LIBRARIES} ZLIB::ZLIB PNG::PNG JPEG::JPEG
  ${PROTOBUF_C_LIBRARY} ${JANSSON_LIBRARY} m)
if(CONVOY_OPENMP)
  target_link_libraries(convoy_shared PRIVATE OpenMP::OpenMP_C)
endif()
if(CONVOY_BLAS STREQUAL "openblas")
  target_link_libraries(convoy_shared PRIVATE PkgConfig::OPENBLAS)
endif()
if(CONVOY_SANITIZE)
  target_link_options(convoy_shared INTERFACE -fsanitize=address,undefined)
else() # every symbol it uses resolved by the libraries it names
  target_link_options(convoy_shared PRIVATE -Wl,--no-undefined)
endif()

install(TARGETS convoy convoy_shared EXPORT convoyTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS convoy_cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${CONVOY_PUBLIC_HEADERS} ${PROJECT_BINARY_DIR}/include/convoy/version.h
  ${PROJECT_BINARY_DIR}/include/convoy/convoy.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/convoy)
install(FILES ${PROJECT_BINARY_DIR}/convoy.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
# the Python package where Debian's python3 looks under /usr (elsewhere: PYTHONPATH); it finds
# the library from there (src/python/convoy/_lib.py)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/src/python/convoy DESTINATION lib/python3/dist-packages
  FILES_MATCHING PATTERN "*.py" PATTERN "__pycache__" EXCLUDE)

# the launchers as PREFIX/bin/convoy-NAME (wrappers around share/convoy/launch/NAME, which finds
# the installed program and models through CONVOY_PREFIX), and the example models
set(CONVOY_LAUNCHERS train scaling slurm)
foreach(name ${CONVOY_LAUNCHERS})
  install(PROGRAMS ${PROJECT_SOURCE_DIR}/launch/${name} DESTINATION ${CMAKE_INSTALL_DATADIR}/convoy/launch)
endforeach()
install(FILES ${PROJECT_SOURCE_DIR}/launch/lib.sh ${PROJECT_SOURCE_DIR}/launch/hostfile.example
  DESTINATION ${CMAKE_INSTALL_DATADIR}/convoy/launch)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/launch/models/ DESTINATION ${CMAKE_INSTALL_DATADIR}/convoy/models
  FILES_MATCHING PATTERN "*.model")
install(CODE "set(SRC \"${PROJECT_SOURCE_DIR}\")
  set(BINDIR \"${CMAKE_INSTALL_BINDIR}\")
  set(NAMES \"${CONVOY_LAUNCHERS}\")
  include(\"${CMAKE_CURRENT_LIST_DIR}/write-launchers.cmake\")")

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

# pkg-config: `pkg-config --libs convoy` links libconvoy.so (which names its own dependencies);
# the dependencies are in Requires.private/Libs.private for a static link (`--static`, with
# -l:libconvoy.a for the archive). A dependency with a .pc file of its
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
convoy_pc_dependency(FALSE "" "${PROTOBUF_C_LIBRARY}" libprotobuf-c)
convoy_pc_dependency(FALSE "" "${JANSSON_LIBRARY}" jansson)
if(CONVOY_OPENMP)
  string(APPEND CONVOY_PC_LIBS_PRIVATE " ${OpenMP_C_FLAGS}")
endif()
set(CONVOY_PC_LIBS "")
if(CONVOY_SANITIZE) # the sanitizer runtimes must come first in any program using either library
  set(CONVOY_PC_LIBS " -fsanitize=address,undefined")
endif()
string(APPEND CONVOY_PC_LIBS_PRIVATE " -lm")
# prefix relative to the .pc file, so the installed tree can be moved (cmake --install --prefix)
file(RELATIVE_PATH CONVOY_PC_UP /p/${CMAKE_INSTALL_LIBDIR}/pkgconfig /p)
string(REGEX REPLACE "/$" "" CONVOY_PC_UP "${CONVOY_PC_UP}")
configure_file(${CMAKE_CURRENT_LIST_DIR}/convoy.pc.in ${PROJECT_BINARY_DIR}/convoy.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/convoy.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
