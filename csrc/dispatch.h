// Which kernel set runs: the SIMD targets compiled into this build, the ones this CPU can
// execute, and the active one (chosen once at import; FASTACT_SIMD forces it).
#pragma once
#include <string>
#include <vector>

#include "kernels/kernel_table.h"

namespace fastact {

// Targets compiled in and runnable on this CPU, best first.
std::vector<const KernelTable*> supported_targets();
// Every target compiled into this build, best first (runnable or not).
std::vector<std::string> compiled_target_names();

const KernelTable& active_target();
// Makes `name` the active target. Throws std::invalid_argument naming the supported targets
// if it is unknown or this CPU cannot run it.
void set_active_target(const std::string& name);
// At import: FASTACT_SIMD if set (throws as above if unusable), else the best supported.
void init_active_target();

}  // namespace fastact
