// Throughput of the AVX-512 instructions a bitmask SpMV chunk is made of, and of three ways to
// write one 16-column chunk, on the machine at hand (docs/results.md, "Decode, a later stop: the
// 70% loop against the vector pipes").
//
//   gcc -O2 -masm=intel -mavx512f -mavx512vl -mavx512bw -mavx512vbmi2 -mavx512vpopcntdq
//       scripts/expand_pipes.c -o /tmp/expand_pipes
//   /tmp/expand_pipes
//
// Every figure is cycles per instruction (first table) or per 16-column chunk (second table):
// the time of N iterations of an unrolled block of independent instructions, divided by the
// instructions or chunks in it, in cycles of a chain of dependent `add`s (one cycle each, so no
// clock frequency is assumed), and in nanoseconds. Values, `x` and the mask all come from L1 (a
// 64-float buffer read again and again): this measures the core, not memory. The cycle column
// is meaningless where the core removes chains of immediate adds (on an Intel Xeon of the
// AMX / AVX-512 FP16 generation "one cycle" came out as 0.071 ns); read the ns column there.
//
// The chunk variants (accumulators zmm10..zmm13, `x` in zmm20 unless it says "x from L1"):
//   expand:      vmovups t, [values]; vexpandps t{k}{z}, t; vfmadd231ps acc, t, x
//                (what crates/sparse/src/kernels/simd.rs runs)
//   ranks+perm:  the lanes' ranks computed from the mask (vpandd with a broadcast of the mask
//                word against (1 << lane) - 1, vpopcntd), then vmovups + vpermps t{k}{z} + FMA
//   perm, given: vmovups + vpermps t{k}{z} by an index already in a register + FMA: the floor
//                of any scheme that would fetch the ranks ready-made (a table, or stored bytes)
//   bf16 zext+shift+expandd: vpmovzxwd t, [values]; vpslld t, 16; vpexpandd t{k}{z}; FMA
//                (the generic bf16 chunk)
//   bf16 vpexpandw: vmovdqu16 ymm t, [values]; vpexpandw t{k2}{z}, t; FMA, k2 holding the
//                chunk's bits on the odd bits (what bitmask_row_bf16_vbmi2 runs)
#include <stdio.h>
#include <time.h>

#define N 20000000L

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(void) {
    float buf[64] __attribute__((aligned(64))) = {0};
    unsigned mask[16] = {0x5555};
    double t0, cycle;
    long i;
    unsigned long p = 0;

    // Defined inputs (zeros: no denormals or NaNs in the timed arithmetic). The compiler emits
    // no AVX-512 code of its own here, so zmm16..zmm21 keep them across the timed blocks.
    __asm__ volatile("vpxord zmm16, zmm16, zmm16\n vpxord zmm17, zmm17, zmm17\n"
                     "vpxord zmm20, zmm20, zmm20\n vpxord zmm21, zmm21, zmm21\n" ::
                         : "xmm16", "xmm17", "xmm20", "xmm21");

    // One cycle: a chain of dependent adds.
    t0 = now();
    for (i = 0; i < N; i++)
        __asm__ volatile("add %0, 3\n add %0, 3\n add %0, 3\n add %0, 3\n" : "+r"(p));
    cycle = (now() - t0) / N / 4;
    printf("one cycle: %.3f ns (%.2f GHz)\n\n", cycle * 1e9, 1e-9 / cycle);

#define CLOBBER "k1", "k2", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", \
    "xmm10", "xmm11", "xmm12", "xmm13"
#define TIMED(name, per, body)                                                             \
    t0 = now();                                                                            \
    for (i = 0; i < N; i++)                                                                \
        __asm__ volatile("kmovw k1, %0\n kmovd k2, %3\n" body ::"r"(0x5555), "r"(buf),         \
                         "r"(mask), "r"(0x22222222u) : CLOBBER);                           \
    {                                                                                      \
        double each = (now() - t0) / N / (per);                                            \
        printf("  %-34s %6.2f %6.3f ns\n", name, each / cycle, each * 1e9);                \
    }
#define X8(op) op(0) op(1) op(2) op(3) op(4) op(5) op(6) op(7)
#define X4(op) op(0) op(1) op(2) op(3)
#define EXPAND(n) "vexpandps zmm" #n "{k1}{z}, zmm16\n"
#define EXPAND_Y(n) "vexpandps ymm" #n "{k1}{z}, ymm16\n"
#define PERM(n) "vpermps zmm" #n "{k1}{z}, zmm17, zmm16\n"
#define FMA(n) "vfmadd231ps zmm" #n ", zmm16, zmm17\n"
#define POPCNT(n) "vpopcntd zmm" #n ", zmm16\n"
#define AND(n) "vpandd zmm" #n ", zmm16, zmm17\n"

    printf("cycles per instruction (8 independent per block)\n");
    TIMED("vexpandps zmm{k}{z}, zmm", 8, X8(EXPAND))
    TIMED("vexpandps ymm{k}{z}, ymm", 8, X8(EXPAND_Y))
    TIMED("vpermps zmm{k}{z}", 8, X8(PERM))
    TIMED("vfmadd231ps zmm", 8, X8(FMA))
    TIMED("vpopcntd zmm", 8, X8(POPCNT))
    TIMED("vpandd zmm", 8, X8(AND))

#define CH_EXPAND(n) "vmovups zmm" #n ", [%1]\n vexpandps zmm" #n "{k1}{z}, zmm" #n "\n" \
    "vfmadd231ps zmm1" #n ", zmm" #n ", zmm20\n"
#define CH_EXPAND_M(n) "vmovups zmm" #n ", [%1]\n vexpandps zmm" #n "{k1}{z}, zmm" #n "\n" \
    "vfmadd231ps zmm1" #n ", zmm" #n ", [%1 + 128]\n"
#define CH_RANKS(n) "vpandd zmm" #n ", zmm21, dword bcst [%2]\n vpopcntd zmm" #n ", zmm" #n "\n" \
    "vmovups zmm4, [%1]\n vpermps zmm" #n "{k1}{z}, zmm" #n ", zmm4\n"                   \
    "vfmadd231ps zmm1" #n ", zmm" #n ", zmm20\n"
#define CH_GIVEN(n) "vmovups zmm" #n ", [%1]\n vpermps zmm" #n "{k1}{z}, zmm21, zmm" #n "\n" \
    "vfmadd231ps zmm1" #n ", zmm" #n ", zmm20\n"

    printf("\ncycles per 16-column chunk (4 independent chunks per block)\n");
    TIMED("expand", 4, X4(CH_EXPAND))
    TIMED("expand, x from L1", 4, X4(CH_EXPAND_M))
    TIMED("ranks + perm", 4, X4(CH_RANKS))
    TIMED("perm, index given", 4, X4(CH_GIVEN))
#define CH_BF16(n) "vpmovzxwd zmm" #n ", [%1]\n vpslld zmm" #n ", zmm" #n ", 16\n"          \
    "vpexpandd zmm" #n "{k1}{z}, zmm" #n "\n vfmadd231ps zmm1" #n ", zmm" #n ", zmm20\n"
#define CH_BF16W(n) "vmovdqu16 ymm" #n ", [%1]\n vpexpandw zmm" #n "{k2}{z}, zmm" #n "\n"      \
    "vfmadd231ps zmm1" #n ", zmm" #n ", zmm20\n"
    TIMED("bf16 zext+shift+expandd", 4, X4(CH_BF16))
    TIMED("bf16 vpexpandw", 4, X4(CH_BF16W))
    return (int)(p & 0);
}
