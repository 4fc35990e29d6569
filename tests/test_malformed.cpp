// The hand-made malformed GGUF corpus (tests/data/malformed, made by make_corpus.py):
// every file is rejected with an error naming its problem.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "gguf/gguf.h"
#include "rill/error.h"
#include "test_paths.h"

TEST(Malformed, EveryCorpusFileIsRejectedWithItsMessage) {
    const std::string dir = source_dir() + "/tests/data/malformed/";
    std::ifstream list(dir + "EXPECTED.tsv");
    ASSERT_TRUE(list) << "missing " << dir << "EXPECTED.tsv";
    int n = 0;
    for (std::string line; std::getline(list, line);) {
        if (line.empty()) continue;
        const auto tab = line.find('\t');
        const std::string name = line.substr(0, tab), expect = line.substr(tab + 1);
        ++n;
        try {
            rill::gguf::File::open(dir + name);
            ADD_FAILURE() << name << ": accepted, expected an error containing '" << expect << "'";
        } catch (const rill::Error& e) {
            EXPECT_NE(std::string(e.what()).find(expect), std::string::npos)
                << name << ": message '" << e.what() << "' does not contain '" << expect << "'";
        }
    }
    EXPECT_GE(n, 30) << "the corpus should hold at least 30 files";
}

TEST(Malformed, MissingFileIsAnError) {
    EXPECT_THROW(rill::gguf::File::open("/nonexistent/model.gguf"), rill::Error);
}
