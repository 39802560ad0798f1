// latefuse-worker: runs one modality's model plugin for a latefuse host that
// loads it with `isolation: process` (core/isolation.h). The host starts it
// with posix_spawn, its socket on descriptor 3; it is not run by hand.
#include "core/isolation.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LATEFUSE_WORKER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define LATEFUSE_WORKER_ASAN 1
#endif

#ifdef LATEFUSE_WORKER_ASAN
// In a sanitizer build, a plugin's crash must still reach the host as the
// signal that killed its worker (what the host reports and the tests check),
// not as AddressSanitizer's report and abort. ASan's instrumentation still
// catches the worker's own memory errors; ASAN_OPTIONS can override this.
extern "C" const char* __asan_default_options() {
  return "handle_segv=0:handle_sigbus=0:handle_abort=0:handle_sigfpe=0";
}
#endif

int main() { return latefuse::RunWorker(3); }
