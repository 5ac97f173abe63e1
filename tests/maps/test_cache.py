from maps.cache import PageCache


def test_hit_miss_lru_and_ttl():
    now = [0.0]
    cache = PageCache(max_pages=2, ttl_s=10, clock=lambda: now[0])
    built = []
    page, hit = cache.get_or_build("a", lambda: built.append("a") or "A")
    assert (page, hit) == ("A", False)
    assert cache.get_or_build("a", lambda: "other") == ("A", True)
    cache.put("b", "B")
    cache.get("a")  # a is now the most recent
    cache.put("c", "C")  # evicts b
    assert cache.get("b") is None and cache.get("a") == "A" and len(cache) == 2
    now[0] = 11.0
    assert cache.get("a") is None  # expired
    assert built == ["a"]


def test_zero_pages_caches_nothing():
    cache = PageCache(max_pages=0)
    cache.put("a", "A")
    assert cache.get("a") is None
