/* lstm.h - LSTM digit classifier: LSTM(In -> H) over frames, mean-pool of
 * the hidden states over each utterance's valid frames, Linear(H -> C),
 * softmax cross-entropy (mean over the batch). Forward and full BPTT
 * backward batched with cblas_sgemm; Adam with global gradient-norm
 * clipping.
 *
 * Parameters are laid out like PyTorch nn.LSTM / nn.Linear (gate order
 * i, f, g, o): W_ih (4H x In), W_hh (4H x H), b_ih (4H), b_hh (4H),
 * W_out (C x H), b_out (C), all row-major float32. Each parameter is its own
 * 64-byte aligned buffer, with its own gradient, exp_avg and exp_avg_sq
 * buffers of the same size (the Adam "companions" a pruner masks in place).
 */
#ifndef SP_LSTM_H
#define SP_LSTM_H

#include <stdint.h>

/** Parameter indices; also the `which` argument of sp_observe_fn. */
enum {
    SP_P_W_IH = 0, /* lstm.weight_ih_l0  4H x In  prunable */
    SP_P_W_HH = 1, /* lstm.weight_hh_l0  4H x H   prunable */
    SP_P_B_IH = 2, /* lstm.bias_ih_l0    4H */
    SP_P_B_HH = 3, /* lstm.bias_hh_l0    4H */
    SP_P_W_OUT = 4, /* fc.weight         C x H    prunable */
    SP_P_B_OUT = 5, /* fc.bias           C */
    SP_NPARAMS = 6
};

/** Status codes (0 = ok). */
enum { SP_LSTM_OK = 0, SP_LSTM_E_NOMEM = -1, SP_LSTM_E_INVALID = -2 };

typedef struct sp_param {
    const char *name;   /* PyTorch-style name, static string */
    int64_t rows, cols; /* biases: rows = length, cols = 1 */
    int64_t size;       /* rows * cols */
    int prunable;       /* 1 for the three weight matrices */
    float *data;        /* the weights */
    float *grad;        /* gradient of the last backward */
    float *exp_avg;     /* Adam first moment */
    float *exp_avg_sq;  /* Adam second moment */
} sp_param;

typedef struct sp_model {
    int64_t in, hidden, classes;
    int64_t adam_step; /* Adam updates done (bias correction uses it) */
    sp_param p[SP_NPARAMS];
} sp_model;

/** Allocate and initialise like PyTorch: every parameter ~ U(-1/sqrt(H),
 *  1/sqrt(H)), drawn in index order from sp_rng seeded with seed; Adam
 *  state zero. */
int sp_model_init(sp_model *m, int64_t in, int64_t hidden, int64_t classes,
                  uint64_t seed);
void sp_model_free(sp_model *m);

typedef struct sp_adam_options {
    float lr, beta1, beta2, eps; /* 1e-3, 0.9, 0.999, 1e-8 */
    float clip;                  /* max global grad L2 norm; <= 0: off */
} sp_adam_options;

void sp_adam_options_init(sp_adam_options *o);

/** Global L2 norm of all gradients (double accumulation). */
double sp_model_grad_norm(const sp_model *m);

/** Clip (PyTorch clip_grad_norm_: scale by clip/(norm+1e-6) when < 1),
 *  then one Adam step (PyTorch torch.optim.Adam formula, no weight decay).
 *  Returns the gradient norm before clipping. */
double sp_model_adam_step(sp_model *m, const sp_adam_options *o);

/** A packed minibatch. Utterances are sorted by length, longest first, and
 *  frames stored time-major with only the active utterances per step (like
 *  PyTorch's PackedSequence): rows off[t] .. off[t]+bt[t]-1 hold frame t of
 *  utterances 0 .. bt[t]-1. */
typedef struct sp_batch {
    int64_t B, T;           /* utterances, max length (= len[0]) */
    int64_t in;             /* feature dimension */
    const int64_t *len;     /* B lengths, non-increasing, >= 1 */
    const int64_t *bt;      /* T active counts, bt[t] = #{len > t} */
    const int64_t *off;     /* T+1 row offsets, off[T] = sum(len) */
    const float *x;         /* off[T] x in */
    const int32_t *labels;  /* B class labels */
    const int64_t *ids;     /* B caller ids (sorted order), for reference */
} sp_batch;

/** Owner of a packed batch's storage; zero-initialise, reuse, free. */
typedef struct sp_batch_buf {
    sp_batch b;
    int64_t cap_b, cap_t, cap_rows;
    int64_t *len, *bt, *off, *ids;
    int32_t *labels;
    float *x;
} sp_batch_buf;

/** Pack n utterances ids[0..n) whose features are feats[id] (frames[id] x
 *  in) and labels labels[id]; sorts them by length (longest first, ties in
 *  the given order). */
int sp_batch_pack(sp_batch_buf *bb, int64_t n, const int64_t *ids,
                  const float *const *feats, const int64_t *frames,
                  const int32_t *labels, int64_t in);
void sp_batch_buf_free(sp_batch_buf *bb);

/** Observation hook: the input rows of prunable matrix `which`
 *  (SP_P_W_IH: the frames, rows = valid frames, cols = In; SP_P_W_HH: the
 *  previous hidden states h_{t-1} (zero at t = 0), rows = valid frames,
 *  cols = H; SP_P_W_OUT: the pooled hidden vectors, rows = batch, cols = H),
 *  contiguous row-major float32, valid only during the call. */
typedef void (*sp_observe_fn)(void *user, int which, const float *x,
                              int64_t rows, int64_t cols);

typedef struct sp_lstm_ws sp_lstm_ws; /* activations and scratch */

int sp_lstm_ws_create(sp_lstm_ws **out, const sp_model *m);
void sp_lstm_ws_free(sp_lstm_ws *ws);

/** Forward pass. Stores what backward needs in ws. Writes the mean loss
 *  to *loss and the number of correct argmax predictions to *correct (each
 *  may be NULL). observe (may be NULL: then it costs nothing) is called for
 *  W_ih, W_hh and W_out, in that order, after the recurrence. */
int sp_lstm_forward(const sp_model *m, const sp_batch *b, sp_lstm_ws *ws,
                    sp_observe_fn observe, void *user, double *loss,
                    int64_t *correct);

/** Logits of the last forward, B x C in the batch's (sorted) order. */
const float *sp_lstm_logits(const sp_lstm_ws *ws);

/** Backward of the last forward (same batch): overwrites every
 *  m->p[k].grad with d(mean loss)/d(param). */
int sp_lstm_backward(sp_model *m, const sp_batch *b, sp_lstm_ws *ws);

#endif /* SP_LSTM_H */
