#include "emu.h"

dim3 threadIdx, blockIdx, blockDim, gridDim;
unsigned long long emu_seed = 0;

extern "C" void emu_switch(void** save_sp, void* new_sp);
asm(R"(
.text
.globl emu_switch
.type emu_switch,@function
emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
.size emu_switch, .-emu_switch
)");

namespace
{
constexpr size_t kStack = 256 * 1024;

struct Fiber
{
    void* sp = nullptr;
    char* stack = nullptr;
    bool done = false;
    dim3 tid;
    const unsigned* wait_gen_ptr = nullptr; // barrier generation this fiber waits to change
    unsigned wait_gen = 0;
};

struct Barrier
{
    int expected = 0;
    int arrived = 0;
    unsigned gen = 0;
};

struct Warp
{
    Barrier bar;
    unsigned buf[2][32];
    int phase[32];
    int lanes = 32;
};

std::vector<Fiber> fibers;
std::vector<Warp> warps;
Barrier block_bar;
int cur = -1;
void* sched_sp = nullptr;
bool progress = false;
const std::function<void()>* g_body = nullptr;
std::vector<unsigned char> dyn;
size_t dyn_bytes = 0;

void yield_to_scheduler() { emu_switch(&fibers[cur].sp, sched_sp); }

void barrier_wait(Barrier& b)
{
    const unsigned g = b.gen;
    progress = true;
    if (++b.arrived == b.expected)
    {
        b.arrived = 0;
        b.gen++;
        return;
    }

    while (b.gen == g)
    {
        fibers[cur].wait_gen_ptr = &b.gen;
        fibers[cur].wait_gen = g;
        yield_to_scheduler();
    }
    fibers[cur].wait_gen_ptr = nullptr;
}

void fiber_entry()
{
    (*g_body)();
    fibers[cur].done = true;
    progress = true;
    yield_to_scheduler();
    abort();
}

void init_fiber(Fiber& f)
{
    if (!f.stack)
    {
        f.stack = (char*)mmap(nullptr, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (f.stack == MAP_FAILED) { perror("mmap"); abort(); }
        mprotect(f.stack, 4096, PROT_NONE); // stack overflow guard
    }

    uintptr_t top = ((uintptr_t)(f.stack + kStack)) & ~(uintptr_t)15;
    uint64_t* s = (uint64_t*)top;
    s[-1] = 0;                        // fake return address of fiber_entry
    s[-2] = (uint64_t)&fiber_entry;   // ret target
    for (int i = 3; i <= 8; i++) s[-i] = 0; // rbp rbx r12 r13 r14 r15
    uint32_t* ctl = (uint32_t*)&s[-9];
    ctl[0] = 0x1F80;                  // mxcsr
    ctl[1] = 0x037F;                  // x87 control word
    f.sp = &s[-9];
    f.done = false;
    f.wait_gen_ptr = nullptr;
}
} // namespace

float4* emu_dyn_shared()
{
    return dyn_bytes ? reinterpret_cast<float4*>(dyn.data()) : nullptr;
}

void __syncthreads() { barrier_wait(block_bar); }

unsigned int emu_warp_exchange(unsigned int mine, int src_lane, bool ballot)
{
    Warp& w = warps[threadIdx.x / 32];
    const int lane = threadIdx.x & 31;
    const int ph = w.phase[lane];
    w.phase[lane] ^= 1;
    w.buf[ph][lane] = mine;
    barrier_wait(w.bar);
    if (ballot)
    {
        unsigned r = 0;
        for (int i = 0; i < w.lanes; i++) r |= (w.buf[ph][i] & 1u) << i;
        return r;
    }

    if (src_lane >= w.lanes) { fprintf(stderr, "shuffle from inactive lane\n"); abort(); }
    return w.buf[ph][src_lane];
}

void emu_launch(dim3 grid, dim3 block, size_t dyn_shared_bytes, const std::function<void()>& body)
{
    const int n = (int)(block.x * block.y * block.z);
    if (block.y != 1 || block.z != 1 || n > 1024 || n <= 0) { fprintf(stderr, "bad block\n"); abort(); }
    if (fibers.size() < (size_t)n) fibers.resize(n);
    const int nw = (n + 31) / 32;
    warps.assign(nw, Warp{});
    gridDim = grid;
    blockDim = block;
    g_body = &body;
    dyn_bytes = dyn_shared_bytes;
    dyn.assign(dyn_shared_bytes + 16, 0);
    std::mt19937_64 rng(emu_seed);
    for (unsigned bz = 0; bz < grid.z; bz++)
    for (unsigned by = 0; by < grid.y; by++)
    for (unsigned bx = 0; bx < grid.x; bx++)
    {
        blockIdx = dim3(bx, by, bz);
        memset(dyn.data(), 0xff, dyn.size()); // uninitialized shared memory reads show as NaN
        block_bar = Barrier{n, 0, 0};
        for (int w = 0; w < nw; w++)
        {
            warps[w].lanes = std::min(32, n - w * 32);
            warps[w].bar = Barrier{warps[w].lanes, 0, 0};
            memset(warps[w].phase, 0, sizeof warps[w].phase);
        }

        for (int i = 0; i < n; i++)
        {
            init_fiber(fibers[i]);
            fibers[i].tid = dim3(i, 0, 0);
        }

        int alive = n;
        long long idle = 0;
        int next = 0;
        // Priority mode (seeded): a random order of warps, and of lanes inside each warp; the first ready fiber
        // in that order runs until it blocks, so warps drift apart as far as the barriers allow. The order is
        // redrawn every time the block barrier releases.
        std::vector<int> order(n);
        unsigned last_block_gen = ~0u;
        auto redraw = [&] {
            std::vector<int> wo(nw);
            for (int w = 0; w < nw; w++) wo[w] = w;
            std::shuffle(wo.begin(), wo.end(), rng);
            int k = 0;
            for (int w : wo)
            {
                const int l0 = w * 32, l1 = std::min(n, l0 + 32);
                std::vector<int> lanes;
                for (int t = l0; t < l1; t++) lanes.push_back(t);
                std::shuffle(lanes.begin(), lanes.end(), rng);
                for (int t : lanes) order[k++] = t;
            }
        };
        while (alive > 0)
        {
            int i = -1;
            if (emu_seed)
            {
                if (block_bar.gen != last_block_gen) { last_block_gen = block_bar.gen; redraw(); }
                for (int t : order)
                {
                    const Fiber& f = fibers[t];
                    if (!f.done && (!f.wait_gen_ptr || *f.wait_gen_ptr != f.wait_gen)) { i = t; break; }
                }
                if (i < 0)
                {
                    fprintf(stderr, "DEADLOCK: block (%u,%u,%u): %d threads alive, all waiting at barriers\n", bx, by, bz, alive);
                    abort();
                }
            }
            else
            {
                while (fibers[next].done) next = (next + 1) % n;
                i = next;
                next = (next + 1) % n;
            }

            cur = i;
            threadIdx = fibers[i].tid;
            progress = false;
            emu_switch(&sched_sp, fibers[i].sp);
            if (fibers[i].done) alive--;
            if (progress) idle = 0;
            else if (++idle > 64LL * n)
            {
                fprintf(stderr, "DEADLOCK: block (%u,%u,%u): %d threads alive, stuck at a barrier\n", bx, by, bz, alive);
                abort();
            }
        }
    }

    cur = -1;
}
