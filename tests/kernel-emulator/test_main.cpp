#include "test_common.h"
#include <chrono>
int g_fail = 0, g_pass = 0;
void run_basic(const std::string&);
void run_att(const std::string&);
// usage: ./kemu [group ...]   groups: embed convert silu gather rope norm deviation topk att1 att2 (default: all)
// env: EMU_SEED=n (random fiber scheduling; 0 = round robin), VERBOSE=1 (print passes too)
int main(int argc, char** argv)
{
    if (getenv("EMU_SEED")) emu_seed = strtoull(getenv("EMU_SEED"), nullptr, 10);
    std::vector<std::string> groups;
    for (int i = 1; i < argc; i++) groups.push_back(argv[i]);
    if (groups.empty()) groups = {"all", "att"};
    for (auto& g : groups)
    {
        auto t0 = std::chrono::steady_clock::now();
        if (g.rfind("att", 0) == 0) run_att(g); else run_basic(g);
        printf("-- group %s done in %.1fs\n", g.c_str(), std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    printf("TOTAL pass=%d fail=%d\n", g_pass, g_fail);
    return g_fail ? 1 : 0;
}
