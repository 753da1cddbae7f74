# Debian packages (scripts/install-deps.sh installs them).
find_package(PkgConfig REQUIRED)
pkg_check_modules(OPENSSL REQUIRED IMPORTED_TARGET openssl>=3.0)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
pkg_check_modules(SYSTEMD REQUIRED IMPORTED_TARGET libsystemd)
pkg_check_modules(PROTOBUFC REQUIRED IMPORTED_TARGET libprotobuf-c)
pkg_check_modules(SQLITE REQUIRED IMPORTED_TARGET sqlite3)
pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
pkg_check_modules(CONFUSE REQUIRED IMPORTED_TARGET libconfuse)
pkg_check_modules(MHD REQUIRED IMPORTED_TARGET libmicrohttpd)
find_package(Threads REQUIRED)

# gRPC core: a dynamic link needs only grpc + gpr (pkg-config would add ~90 absl libs).
find_path(GRPC_INCLUDE_DIR grpc/grpc.h REQUIRED)
find_library(GRPC_LIBRARY grpc REQUIRED)
find_library(GPR_LIBRARY gpr REQUIRED)
add_library(warden::grpc INTERFACE IMPORTED)
target_include_directories(warden::grpc INTERFACE ${GRPC_INCLUDE_DIR})
target_link_libraries(warden::grpc INTERFACE ${GRPC_LIBRARY} ${GPR_LIBRARY} Threads::Threads)

find_program(PROTOC_C protoc-c REQUIRED)
find_path(PROTOBUF_WKT_DIR google/protobuf/struct.proto PATHS /usr/include REQUIRED)
