# Run by `cmake --install` (install(CODE) in install.cmake, with SRC, BINDIR and the launchers'
# NAMES set): writes PREFIX/BINDIR/convoy-NAME from launcher.in for each launcher, with the
# install-time prefix (so that a copy sbatch runs from its spool directory still finds it) and,
# for a batch script, its #SBATCH defaults.
foreach(NAME ${NAMES})
  file(STRINGS ${SRC}/launch/${NAME} sbatch REGEX "^#SBATCH ")
  set(SBATCH_LINES "")
  foreach(line ${sbatch})
    string(APPEND SBATCH_LINES "${line}\n")
  endforeach()
  set(PREFIX ${CMAKE_INSTALL_PREFIX})
  set(out $ENV{DESTDIR}${CMAKE_INSTALL_PREFIX}/${BINDIR}/convoy-${NAME})
  configure_file(${SRC}/src/install/launcher.in ${out} @ONLY)
  file(CHMOD ${out} PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
    WORLD_READ WORLD_EXECUTE)
  message(STATUS "Installing: ${out}")
endforeach()
