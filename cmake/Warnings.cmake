# Compiler flags shared by every target we own (generated protobuf-c code opts out).
set(WARDEN_WARNINGS
    -Wall -Wextra -Wshadow -Wformat=2 -Wmissing-prototypes -Wstrict-prototypes
    -Wno-unused-parameter -Wno-missing-field-initializers)
if(WARDEN_WERROR)
  list(APPEND WARDEN_WARNINGS -Werror)
endif()

set(WARDEN_HARDENING -fstack-protector-strong -fPIE)
if(NOT WARDEN_SANITIZE)
  # _FORTIFY_SOURCE needs optimisation and conflicts with some sanitizer checks.
  list(APPEND WARDEN_HARDENING -D_FORTIFY_SOURCE=2)
endif()
set(CMAKE_POSITION_INDEPENDENT_CODE ON)
add_link_options(-pie -Wl,-z,relro,-z,now)

if(WARDEN_SANITIZE)
  add_compile_options(-fsanitize=${WARDEN_SANITIZE} -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${WARDEN_SANITIZE})
endif()

if(WARDEN_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "WARDEN_FUZZ needs clang (CC=clang)")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()

# warden_target_flags(target): our warnings + hardening on a target we own.
function(warden_target_flags target)
  target_compile_options(${target} PRIVATE ${WARDEN_WARNINGS} ${WARDEN_HARDENING})
endfunction()
