#!/usr/bin/env python3
"""Classifies `perf script -F comm,ip,sym,dso` samples (with call chains) of sesamed's core by
what they were doing, and prints the shares. Used by perf-cpu0.sh.

Kernel samples are classified by any kernel frame; user samples first by stack-wide rules (the
crypto and the SQLite round trip, whose stacks are distinctive), then by the innermost frame that
a component rule recognises (so malloc under serde_json counts as malloc, not JSON).
"""
import collections
import re
import sys

# (kind, label, regex). Kinds: C = thread name, K = any kernel frame, S = any user frame,
# U = innermost recognised user frame. Order matters within a kind.
RULES = [
    ("S", "sign: SigningKeyPair::sign (aws-lc)", r"SigningKeyPair::sign|_sign_|scalarmulbase|rsaz_|RSA_sign|ecdsa_|p256"),
    ("S", "RNG for the jti (aws-lc DRBG: AES + RDRAND)", r"rdrand|RAND_bytes|ctr_drbg|CTR_DRBG|random_bytes|SystemRandom"),
    ("S", "verify: Verifier::verify (aws-lc)", r"Verifier::verify|_verify|scalarmuldouble|decode_loop"),
    ("C", "revocation check: sqlx SQLite worker thread (all its time, user+kernel)", r"^sqlx-sqlite"),
    ("S", "revocation check: sqlx/flume on the tokio side", r"is_access_token_revoked|sqlx_core|sqlx_sqlite|flume::"),
    ("K", "kernel: TCP send (incl. loopback delivery to, and wake-up of, the load generator)", r"tcp_sendmsg"),
    ("K", "kernel: TCP receive", r"tcp_recvmsg|sys_recvfrom|ksys_read|sys_readv"),
    ("K", "kernel: futex (waking/waiting for other threads)", r"futex"),
    ("K", "kernel: epoll", r"epoll"),
    ("K", "kernel: scheduling/other", r"."),
    ("U", "JSON (serde_json, serde derives)", r"serde_json::|impl serde::|^<?serde::"),
    ("U", "base64", r"^<?base64::"),
    ("U", "SHA-256 of the client secret", r"sha256|SHA256|digest::"),
    ("U", "metrics middleware (prometheus-client)", r"^<?prometheus_client::|^<?sesame_server::metrics::|^<?axum::extract::matched_path"),
    ("U", "malloc/free/memcpy (libc)", r"^(malloc|_int_malloc|_int_free|cfree|free|realloc|malloc_consolidate|unlink_chunk\S*|__memmove\S*|__memcpy\S*|__memset\S*|__memcmp\S*|tcache\S*)$"),
    ("U", "form body / path percent-decoding (form_urlencoded, percent_encoding)", r"^<?form_urlencoded|^<?percent_encoding|^<?sesame_server::form"),
    ("U", "tokio runtime (scheduler, I/O driver, timers)", r"^<?tokio::runtime|^mio::|^<?tokio::io"),
    ("U", "hyper HTTP/1 parse+encode (httparse, header map)", r"^<?hyper::proto::h1::role|^<?httparse|^<?http::header|^hyper::proto::h1::io"),
    ("U", "axum routing, extractors and handler bodies (sesame code inlined into RouteFuture::poll)", r"^<?matchit::|^<?axum::routing|^<?axum::extract|^<?axum_core::"),
]
OTHER = "everything else in user space (tokio/axum/hyper glue, sesame handlers, other processes)"


def classify(comm, frames):
    kern = [s for s, d in frames if "kernel" in d]
    user = [s for s, d in frames if "kernel" not in d]
    for kind, name, rx in RULES:
        if kind == "C" and re.search(rx, comm or ""):
            return name
        if kind == "K" and kern and re.search(rx, "\n".join(kern), re.M):
            return name
        if kind == "S" and not kern and any(re.search(rx, f) for f in user):
            return name
    if kern or not user:
        return "unattributed"
    for frame in user:
        for kind, name, rx in RULES:
            if kind == "U" and re.search(rx, frame):
                return name
    return OTHER


def main(path):
    counts = collections.Counter()
    comm, frames = None, []

    def flush():
        if frames:
            counts[classify(comm, frames)] += 1

    for line in open(path, errors="replace"):
        if not line.strip():
            flush()
            comm, frames = None, []
        elif not line.startswith((" ", "\t")):
            flush()
            comm, frames = line.split()[0], []
        else:
            m = re.match(r"\s*[0-9a-f]+ (.*?)(?: \(([^()]*)\))?$", line.rstrip())
            if m:
                frames.append((re.sub(r"\+0x[0-9a-f]+$", "", m.group(1)), m.group(2) or ""))
    flush()
    total = sum(counts.values())
    for name, n in counts.most_common():
        print(f"{100 * n / total:6.1f} %  {name}")
    print(f"({total} samples)")


if __name__ == "__main__":
    main(sys.argv[1])
