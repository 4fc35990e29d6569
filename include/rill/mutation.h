// Deliberate errors for the golden's mutation test (tests/oracle/golden.mjs --mutants), which
// shows that the golden fails when the forward pass is wrong by as little as one rope angle,
// one weight row scaled by 1 + 1e-3, the delta rule's decay taken one position late, or one
// Q4_K scale nibble swapped. They exist only in the `mutant` build (RILL_MUTANTS), where the
// environment variable RILL_MUTATION names the one that is on; everywhere else each check is
// the constant false and compiles away.
#pragma once

#if defined(RILL_MUTANTS)
#include <cstdlib>
#include <cstring>
#endif

namespace rill::mutation {

#if defined(RILL_MUTANTS)
inline bool on(const char* name) {
    static const char* const active = std::getenv("RILL_MUTATION");
    return active && std::strcmp(active, name) == 0;
}
#else
constexpr bool on(const char*) { return false; }
#endif

}  // namespace rill::mutation
