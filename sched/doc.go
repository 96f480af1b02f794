// Package sched holds uvs's connection schedulers, one file per IPVS
// scheduler module (net/netfilter/ipvs/ip_vs_<name>.c), reproducing the
// kernel's picks: the same loops in the same list order with the same
// tie-breaking, the same hash tables and hash functions, the same weight
// and overload rules. Each file's doc comment says which kernel function
// it follows and what of it is observable.
//
// Where uvs cannot be the kernel:
//   - twos draws from a per-instance seeded PCG instead of prandom_u32, so
//     its sequence is reproducible but not the kernel's (see Seeder).
//   - lblc and lblcr expire their caches from Packet.Now rather than a
//     kernel timer; the periodic check starts at the first Schedule and
//     missed ticks are replayed at their own times when a packet comes.
//     Their tables hold a fixed number of entries so that Schedule never
//     allocates; past it they behave as the kernel does when its atomic
//     allocation fails (scheduled, not cached).
//   - sh, dh, lblc and lblcr hash with hash_32 (top bits of
//     v * 0x61C88647) as Linux 4.19 and mainline do; kernels up to at
//     least 4.4 kept the low bits of v * 2654435761 instead, and pick
//     other buckets.
//   - mh follows a 64-bit kernel, where hsiphash is SipHash-1-3; its table
//     size defaults to CONFIG_IP_VS_MH_TAB_INDEX=12 (4093), see NewMH.
//   - Cross products are computed in 64 bits where old kernels overflowed
//     32; counters are read with atomic loads, one at a time, as the kernel
//     reads its atomics.
//
// The threshold helpers (OverloadOnBind, OverloadOnUnbind, SetThresholds)
// are the three places where IPVS sets and clears DestOverload.
package sched
