# FindLPSolve.cmake -- Debian's liblpsolve55-dev: /usr/include/lpsolve/lp_lib.h and the static
# /usr/lib/liblpsolve55_pic.a, which needs -lcolamd (libsuitesparse-dev) -ldl -lm.
# Provides LPSolve::LPSolve, LPSolve_FOUND, LPSolve_INCLUDE_DIR, LPSolve_LIBRARY.
find_path(LPSolve_INCLUDE_DIR NAMES lpsolve/lp_lib.h HINTS $ENV{LPSOLVE_HOME} PATH_SUFFIXES include)
find_library(LPSolve_LIBRARY NAMES liblpsolve55_pic.a liblpsolve55.a lpsolve55
             HINTS $ENV{LPSOLVE_HOME} PATH_SUFFIXES lib lp_solve)
find_library(LPSolve_COLAMD_LIBRARY NAMES colamd)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(LPSolve REQUIRED_VARS LPSolve_LIBRARY LPSolve_INCLUDE_DIR
                                  LPSolve_COLAMD_LIBRARY)
if(LPSolve_FOUND AND NOT TARGET LPSolve::LPSolve)
  add_library(LPSolve::LPSolve UNKNOWN IMPORTED)
  set_target_properties(LPSolve::LPSolve PROPERTIES
    IMPORTED_LOCATION "${LPSolve_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${LPSolve_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "${LPSolve_COLAMD_LIBRARY};${CMAKE_DL_LIBS};m")
endif()
mark_as_advanced(LPSolve_INCLUDE_DIR LPSolve_LIBRARY LPSolve_COLAMD_LIBRARY)
