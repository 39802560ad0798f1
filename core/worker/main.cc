// latefuse-worker: runs one modality's model plugin for a latefuse host that
// loads it with `isolation: process` (core/isolation.h). The host starts it
// with posix_spawn, its socket on descriptor 3; it is not run by hand.
#include "core/isolation.h"

int main() { return latefuse::RunWorker(3); }
