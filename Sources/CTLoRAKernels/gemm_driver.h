// The GEMM driver, written once for both element types: gemm.c includes this file with
//   GEMM_T       the element type            GEMM_CONFIG  its tlora_?gemm_config type
//   GEMM_PACK_A  / GEMM_PACK_B  its packers   GEMM_FN(x)   a name with the type's suffix
//
// Loops, outermost first (BLIS's five loops, in the roles that suit a row-major C whose vectors
// run along N):
//   ib (mb rows of A)  } one "step": the mb×kc panel of A is packed by all threads together
//   pc (kc of K)       }   (groups of micro-panels from a shared counter) into a shared buffer
//                          (L3), then a barrier
//   jb (nb columns)    the kc×nb block of B, packed by the thread that takes it (its own L2)
//   ir (mr rows)       the mr×kc micro-panel of A, in L1 while it is reused for every jr
//   jr (nr columns)    the micro-kernel on one mr×nr tile, streaming a kc×nr micro-panel of B
// Within a step the work is split into "units" — one jb block, or a share of its rows when there
// are too few blocks to go round. Each thread owns a contiguous range of them (so it packs each
// of its blocks of B once) and, when it is done, steals units from the back of the others'
// ranges: a thread slowed down by another process on its core does less of the work instead of
// holding everyone up. The panel of A is double buffered: a thread packs step s+1 while others may
// still compute step s, so one barrier per step suffices (after it, everyone has finished step
// s-1, whose buffer is the one reused).
// Units of one step touch disjoint parts of C, and every thread finishes step s before it packs
// for step s+1, so each element of C receives its K slices in order.

typedef struct {
    const GEMM_CONFIG *cfg;
    int trans_a, trans_b;
    size_t m, n, k, lda, ldb, ldc;
    GEMM_T alpha, beta;
    const GEMM_T *a, *b;
    GEMM_T *c;
    size_t mbs, kcs, nbs;  // block sizes used (even splits of m, k, n)
    size_t blocks_n;       // jb blocks
    size_t units_per;      // units per jb block (shares of the panel's rows)
    GEMM_T *apanel[2];
    gemm_barrier barrier;
    GEMM_T **bbuf;         // each thread's packing buffer for B
    atomic_size_t next;    // the next packing task for A, numbered across all steps
    tlora_range range[TLORA_GEMM_MAX_THREADS];
} GEMM_FN(job);

// One step: rows ib..ib+mb of C, slice pc..pc+kc of K, the packed panel of A at ap.
typedef struct {
    size_t ib, mb, pc, kc, panels;
    GEMM_T beta;
    const GEMM_T *ap;
} GEMM_FN(step);

// Unit u of step s: the kc×nb block of B (packed into bbuf unless *packed says it is there
// already) times the unit's share of the panel's micro-panels of A.
static void GEMM_FN(unit)(const GEMM_FN(job) *j, const GEMM_FN(step) *s, size_t u, GEMM_T *bbuf, size_t *packed) {
    const GEMM_CONFIG *cfg = j->cfg;
    const size_t mr = cfg->mr, nr = cfg->nr, kc = s->kc, mb = s->mb;
    size_t block = u / j->units_per, share = u % j->units_per;
    size_t jb = block * j->nbs, nb = j->n - jb < j->nbs ? j->n - jb : j->nbs;
    if (*packed != block) {
        GEMM_PACK_B(bbuf, j->b, j->ldb, j->trans_b, s->pc, jb, kc, nb, nr);
        *packed = block;
    }
    size_t q0 = s->panels * share / j->units_per, q1 = s->panels * (share + 1) / j->units_per;
    // The next micro-panel of A comes from L3: it is fetched into L2 a slice per micro-kernel
    // call while this one is in use.
    size_t calls = (nb + nr - 1) / nr, slice = (mr * kc * sizeof(GEMM_T) / calls + 63) / 64 * 64;
    for (size_t ir = q0 * mr; ir < q1 * mr && ir < mb; ir += mr) {
        size_t rows = mb - ir < mr ? mb - ir : mr;
        const GEMM_T *a = s->ap + ir * kc;
        const char *next = (const char *)(a + mr * kc);
        int more = ir + mr < mb;
        GEMM_T *crow = j->c + (s->ib + ir) * j->ldc + jb;
        for (size_t jr = 0; jr < nb; jr += nr, next += slice) {
            size_t cols = nb - jr < nr ? nb - jr : nr;
            if (more)
                for (size_t off = 0; off < slice; off += 64) TLORA_PREFETCH_L2(next + off);
            cfg->kernel(kc, a, bbuf + jr * kc, crow + jr, j->ldc, rows, cols, j->alpha, s->beta);
        }
    }
}

static void GEMM_FN(work)(GEMM_FN(job) *j, int tid, GEMM_T *bbuf) {
    const size_t mr = j->cfg->mr;
    const int threads = j->barrier.count;
    size_t base = 0, number = 0;
    for (size_t ib = 0; ib < j->m; ib += j->mbs) {
        for (size_t pc = 0; pc < j->k; pc += j->kcs, number++) {
            GEMM_FN(step) s = {ib, j->m - ib < j->mbs ? j->m - ib : j->mbs, pc, j->k - pc < j->kcs ? j->k - pc : j->kcs};
            s.panels = (s.mb + mr - 1) / mr;
            // Later slices of K add to what the first one stored.
            s.beta = pc == 0 ? j->beta : (GEMM_T)1;
            GEMM_T *ap = j->apanel[threads > 1 ? number & 1 : 0];
            s.ap = ap;
            // Packing the panel is shared out in groups of micro-panels from a counter.
            size_t groups = (s.panels + TLORA_PACK_GROUP - 1) / TLORA_PACK_GROUP, task;
            while (counter_take(&j->next, base + groups, &task)) {
                size_t r0 = (task - base) * TLORA_PACK_GROUP * mr, r1 = r0 + TLORA_PACK_GROUP * mr;
                if (r1 > s.mb) r1 = s.mb;
                GEMM_PACK_A(ap + r0 * s.kc, j->a, j->lda, j->trans_a, ib + r0, pc, r1 - r0, s.kc, mr);
            }
            base += groups;
            barrier_wait(&j->barrier);
            // This thread's range first, then the others' from the back, the next thread's first.
            size_t units = j->blocks_n * j->units_per, packed = SIZE_MAX, u;
            for (int r = 0, owner = tid; r < threads; r++, owner = (owner + 1) % threads) {
                size_t lo = units * (size_t)owner / (size_t)threads, hi = units * (size_t)(owner + 1) / (size_t)threads;
                while (range_take(&j->range[owner], number, lo, hi, r > 0, &u)) GEMM_FN(unit)(j, &s, u, bbuf, &packed);
            }
        }
    }
}

// A team thread's share of the job.
static void GEMM_FN(thread)(void *context, int tid, int threads) {
    (void)threads;
    GEMM_FN(job) *j = context;
    GEMM_FN(work)(j, tid, j->bbuf[tid]);
}

static int GEMM_FN(gemm)(const GEMM_CONFIG *cfg, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                         GEMM_T alpha, const GEMM_T *a, size_t lda, const GEMM_T *b, size_t ldb, GEMM_T beta,
                         GEMM_T *c, size_t ldc, int threads) {
    if (m == 0 || n == 0) return 0;
    if (k == 0 || alpha == 0) {
        for (size_t i = 0; i < m; i++)
            for (size_t jj = 0; jj < n; jj++) c[i * ldc + jj] = beta == 0 ? 0 : beta * c[i * ldc + jj];
        return 0;
    }
    const size_t mr = cfg->mr, nr = cfg->nr;
    GEMM_FN(job) job = {cfg, trans_a, trans_b, m, n, k, lda, ldb, ldc, alpha, beta, a, b, c};
    // Blocks of equal size (at most the configured one): 2048 rows in blocks of at most 2040 are
    // two blocks of 1032, not one of 2040 and one of 8 that packs all of B again.
    job.mbs = tlora_gemm_even(m, cfg->mb, mr);
    job.kcs = tlora_gemm_even(k, cfg->kc, 8);
    job.nbs = tlora_gemm_even(n, cfg->nb, nr);
    // Units of a step are counted in TLORA_RANGE_BITS bits: absurdly wide products get wider blocks.
    if (n / job.nbs >= TLORA_RANGE_MAX / 64) job.nbs = (n / (TLORA_RANGE_MAX / 64) + nr) / nr * nr;
    job.blocks_n = (n + job.nbs - 1) / job.nbs;
    size_t panels = (job.mbs + mr - 1) / mr;
    if (threads > TLORA_GEMM_MAX_THREADS) threads = TLORA_GEMM_MAX_THREADS;
    if (threads < 1) threads = 1;
    if ((size_t)threads > job.blocks_n * panels) threads = (int)(job.blocks_n * panels);
    // The team may grant fewer threads (busy with another caller, or we are on a team thread).
    threads = tlora_team_acquire(threads);
    // At least TLORA_UNITS units per thread and step (fine enough to even out a slowed thread),
    // by splitting the panel's rows when N has too few blocks.
    job.units_per = 1;
    if (threads > 1 && job.blocks_n < TLORA_UNITS * (size_t)threads) {
        job.units_per = (TLORA_UNITS * (size_t)threads + job.blocks_n - 1) / job.blocks_n;
        if (job.units_per > panels) job.units_per = panels;
    }
    size_t abytes = sizeof(GEMM_T) * job.kcs * panels * mr;
    size_t bbytes = sizeof(GEMM_T) * job.kcs * ((job.nbs + nr - 1) / nr * nr);
    int buffers = threads > 1 ? 2 : 1, ok = 1;
    GEMM_T *bbuf[TLORA_GEMM_MAX_THREADS] = {0};
    job.apanel[0] = job.apanel[1] = NULL;
    for (int i = 0; i < buffers; i++) ok = (job.apanel[i] = tlora_gemm_buffer_acquire(abytes)) != NULL && ok;
    for (int t = 0; t < threads; t++) ok = (bbuf[t] = tlora_gemm_buffer_acquire(bbytes)) != NULL && ok;
    if (ok) {
        barrier_init(&job.barrier, threads);
        atomic_init(&job.next, 0);
        // Tagged with a step that is never current, so the first taker initializes each range.
        for (int t = 0; t < TLORA_GEMM_MAX_THREADS; t++) atomic_init(&job.range[t], range_word(0xFFFFFF, 0, 0));
        job.bbuf = bbuf;
        tlora_team_run(threads, GEMM_FN(thread), &job);
        barrier_destroy(&job.barrier);
    }
    tlora_team_release(threads);
    for (int i = 0; i < buffers; i++) tlora_gemm_buffer_release(job.apanel[i], abytes);
    for (int t = 0; t < threads; t++) tlora_gemm_buffer_release(bbuf[t], bbytes);
    return ok ? 0 : -1;
}
