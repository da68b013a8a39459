// The kernels compiled once per instruction set. This file is included inside
// namespace blockprop::<isa> (see dispatch.h and the BP_ISA_NS build definition), so it declares
// blockprop::avx512::gemm_blocked, blockprop::avx2::gemm_blocked, ... It must not include headers.
// Each function has the contract of the public function of the same name in include/blockprop/.

template <typename T>
void gemm_blocked(index_t m, index_t n, index_t k, T alpha, const T* a, index_t rsa, index_t csa,
                  const T* b, index_t rsb, index_t csb, T beta, T* c, index_t rsc, index_t csc,
                  const Epilogue<T>& epilogue);
// gemm_bf16 (gemm.h) on `path`; builds other than avx512 have the portable path only.
void gemm_bf16_blocked(Bf16Path path, index_t m, index_t n, index_t k, float alpha, const float* a,
                       index_t rsa, index_t csa, const float* b, index_t rsb, index_t csb,
                       float beta, float* c, index_t rsc, index_t csc,
                       const Epilogue<float>& epilogue);
template <typename T>
GemmPlan gemm_plan(index_t m, index_t n, index_t k, index_t rsa, index_t csa, index_t rsb,
                   index_t csb, int threads);

// out[j] (+)= Σ_r x[r, j]   over a contiguous rows×cols matrix, rows summed in order.
template <typename T>
void column_sum(index_t rows, index_t cols, const T* x, T* out, bool accumulate);

template <typename T>
void activation_forward(Activation act, index_t n, const T* x, T* y, double param);
template <typename T>
void activation_backward(Activation act, index_t n, const T* dy, const T* v, T* dx, double param);
template <typename T>
void softmax_forward(index_t rows, index_t cols, const T* x, T* y);
template <typename T>
void softmax_backward(index_t rows, index_t cols, const T* dy, const T* y, T* dx);

template <typename T>
double mse_loss(index_t n, const T* pred, const T* target, T* grad);
template <typename T>
double softmax_cross_entropy(index_t rows, index_t cols, const T* logits,
                             const std::int64_t* labels, T* grad);
template <typename T>
double binary_cross_entropy(index_t n, const T* logits, const T* targets, T* grad);

template <typename T>
void sgd_step(index_t n, T* param, const T* grad, T* velocity, const SgdParams& hp);
template <typename T>
void adam_step(index_t n, T* param, const T* grad, T* m, T* v, const AdamParams& hp);

// Register-only FMA loop for the peak measurement; returns the flops it did.
template <typename T>
double fma_loop(long iterations);

// out = in ⊙ keep(seed, step, i)/(1 − p): dropout's forward and backward (see dropout.h).
template <typename T>
void dropout_mask_apply(index_t n, const T* in, T* out, double p, std::uint64_t seed,
                        std::uint64_t step);

// Normalization (see normalization.h); scratch from the caller: acc 2·cols doubles, and
// scale cols / tmp 3·cols elements.
template <typename T>
void batch_norm_forward(index_t rows, index_t cols, const T* x, const T* gamma, const T* beta,
                        double eps, T* y, T* mean, T* var, double* acc, T* scale);
template <typename T>
void batch_norm_inference(index_t rows, index_t cols, const T* x, const T* gamma, const T* beta,
                          const T* mean, const T* var, double eps, T* y, T* scale);
template <typename T>
void batch_norm_backward(index_t rows, index_t cols, const T* dy, const T* x, const T* mean,
                         const T* var, const T* gamma, double eps, bool batch_stats, T* dx,
                         T* dgamma, T* dbeta, double* acc, T* tmp);
template <typename T>
void layer_norm_forward(index_t rows, index_t cols, const T* x, const T* gamma, const T* beta,
                        double eps, T* y, T* mean, T* var);
template <typename T>
void layer_norm_backward(index_t rows, index_t cols, const T* dy, const T* x, const T* mean,
                         const T* var, const T* gamma, double eps, T* dx, T* dgamma, T* dbeta,
                         double* acc);

template <typename T>
double sum_squares(index_t n, const T* x);
template <typename T>
index_t count_nonfinite(index_t n, const T* x);
template <typename T>
double sum_squared_diff(index_t n, const T* a, const T* b);
template <typename T>
void mark_active(index_t rows, index_t cols, const T* y, std::uint8_t* active);
template <typename T>
double weight_penalty(index_t n, const T* w, double l1, double l2, T* grad);
