// Several threads appending and attending on one cache (run under tsan too: label kv-threads).
#include "kv_test_support.hpp"

#include <thread>

using namespace kvtest;

TEST(KvCache, ThreadsShareOneCache) {
    auto context = make_context();
    const auto c = small_config();
    auto cache = make_cache(context.get(), c);
    std::vector<std::thread> threads;
    std::vector<int> failures(4, 0);
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            uint64_t seq = 0;
            if (grey_kv_sequence_create(cache.get(), 0, &seq) != GREY_OK) ++failures[t];
            for (uint32_t step = 0; step < 12; ++step) {
                if (append(cache.get(), seq, iota_tokens(1, static_cast<int32_t>(step)), random_kv(c, 1, 100 * t + step)) != GREY_OK) ++failures[t];
                grey_kv_attend_params p = GREY_KV_ATTEND_PARAMS_INIT;
                p.query_heads = c.kv_heads;
                std::vector<float> q(c.kv_heads * c.head_dim, 0.5f), out(q.size());
                if (grey_kv_attend(cache.get(), &p, &seq, 1, q.data(), out.data(), q.size() * 4) != GREY_OK) ++failures[t];
            }
        });
    for (auto& thread : threads) thread.join();
    EXPECT_EQ(failures, std::vector<int>(4, 0));
    EXPECT_EQ(stats(cache.get()).tokens, 48u);
}
