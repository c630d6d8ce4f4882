# provider_key: a key shaped like a provider's (sk-proj- and 40 random base62 characters), for
# the gateway's BENCH_KEY. Random, like a real one: the relay withholds any answer holding 8
# bytes of the key, and checks every 4-byte block of an answer against the key's, so a key
# spelled from words the bench's fixtures also use (an earlier "sk-bench-..." met the
# fixtures' "chatcmpl-bench-..." ids in every event) makes the gateway do work no real key
# would cause.
provider_key() {
    python3 -c 'import secrets, string; a = string.ascii_letters + string.digits; print("sk-proj-" + "".join(secrets.choice(a) for _ in range(40)))'
}
