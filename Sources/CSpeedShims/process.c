// prctl(PR_SET_PDEATHSIG) for the launcher's trampoline: glibc declares prctl variadic, which Swift cannot call.
// Invariant: a no-op returning -1 off Linux, so the package builds everywhere.
#include "CSpeedShims.h"

#ifdef __linux__
#include <sys/prctl.h>

int ss_set_parent_death_signal(int signal) { return prctl(PR_SET_PDEATHSIG, (unsigned long)signal, 0, 0, 0); }
#else
int ss_set_parent_death_signal(int signal) { (void)signal; return -1; }
#endif
