// Optimizer updates long enough to run on several threads give the same bits as on one thread,
// and as a naive loop.
#include "blockprop/optimizers.h"
#include "blockprop/threading.h"
#include "test_util.h"

namespace {

using namespace bptest;

template <typename T>
void check(bool adam) {
  const index_t n = 100003;  // above the parallel threshold, not a multiple of any vector width
  const auto p0 = random_vector<T>(n, 11), g = random_vector<T>(n, 12), s0 = random_vector<T>(n, 13, 0.0, 1.0);
  for (Isa isa : testable_isas()) {
    IsaScope scope(isa);
    std::vector<T> p[2] = {p0, p0}, s1[2] = {s0, s0}, s2[2] = {s0, s0};
    for (int t = 0; t < 2; ++t) {
      blockprop::set_num_threads(t + 1);
      if (adam) {
        blockprop::AdamParams hp;
        hp.step = 3;
        hp.weight_decay = 0.01;
        blockprop::adam_step<T>(n, p[t].data(), g.data(), s1[t].data(), s2[t].data(), hp);
      } else {
        blockprop::SgdParams hp;
        hp.lr = 0.1;
        hp.momentum = 0.9;
        hp.weight_decay = 0.01;
        blockprop::sgd_step<T>(n, p[t].data(), g.data(), s1[t].data(), hp);
      }
    }
    blockprop::set_num_threads(0);
    EXPECT_EQ(p[0], p[1]) << isa_label(isa) << (adam ? " adam" : " sgd");
    EXPECT_EQ(s1[0], s1[1]) << isa_label(isa);
    if (!adam) {  // naive SGD with momentum and weight decay, in double
      for (index_t i = 0; i < n; i += 997) {
        const double v = 0.9 * double(s0[i]) + double(g[i]) + 0.01 * double(p0[i]);
        EXPECT_NEAR(double(p[0][i]), double(p0[i]) - 0.1 * v, 1e-5) << "i=" << i << " " << isa_label(isa);
      }
    }
  }
}

TEST(OptimizerThreads, SgdFloat) { check<float>(false); }
TEST(OptimizerThreads, SgdDouble) { check<double>(false); }
TEST(OptimizerThreads, AdamFloat) { check<float>(true); }
TEST(OptimizerThreads, AdamDouble) { check<double>(true); }

}  // namespace
