#include <gtest/gtest.h>

// `int main()` without arguments: clang-19 renames main(argc, argv), which Emscripten's
// metadata reader then misses (TOOLCHAIN.md). Filter with the GTEST_FILTER variable.
int main() {
    testing::InitGoogleTest();
    return RUN_ALL_TESTS();
}
