// tg::version(): the library's version as it was built (tilegrad/version.hpp).
#include "tilegrad/version.hpp"

namespace tg {
const char* version() { return TILEGRAD_VERSION_STRING; }
}  // namespace tg
