// Deterministic RNG: one seeded generator per generation, consumed in a fixed order
// (style anchor: vLLM generate_uniform_probs). xoshiro256** seeded through splitmix64.
#pragma once
#include <cmath>
#include <cstdint>

namespace duet {

class Rng {
  public:
    explicit Rng(uint64_t seed) {
        uint64_t x = seed;
        for (auto & s : s_) s = splitmix64(x);
    }

    uint64_t next_u64() {
        const uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const uint64_t t      = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }

    // returns: U ~ Uniform[0, 1) with 53 random bits
    double uniform() { return (double) (next_u64() >> 11) * 0x1.0p-53; }

    // returns: a standard normal draw (Box-Muller, one value per call; the pair's twin is cached)
    double normal() {
        if (has_spare_) {
            has_spare_ = false;
            return spare_;
        }
        double u1 = 0.0;
        while (u1 <= 0.0) u1 = uniform();
        const double u2 = uniform();
        const double r  = std::sqrt(-2.0 * std::log(u1));
        spare_          = r * std::sin(2.0 * M_PI * u2);
        has_spare_      = true;
        return r * std::cos(2.0 * M_PI * u2);
    }

    static uint64_t splitmix64(uint64_t & x) {
        uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
        z          = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z          = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }

  private:
    static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

    uint64_t s_[4];
    double   spare_     = 0.0;
    bool     has_spare_ = false;
};

}  // namespace duet
