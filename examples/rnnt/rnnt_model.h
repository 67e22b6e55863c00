/* rnnt_model.h - the RNN-T recogniser's network, in C11 with CBLAS.
 *
 *   encoder     stacked LSTM layers over the (stacked) log-mel frames
 *   prediction  embedding of the previous label (blank as the start symbol)
 *               followed by one LSTM layer
 *   joint       z = tanh(W_e enc_t + b_e + W_p pred_u), logits = W_o z + b_o
 *               over blank + the labels (V outputs)
 *
 * Forward and full backward (BPTT) are batched with cblas_sgemm. Tensors of
 * a batch are padded: the features are B x T x F (batch-major, as the data
 * gives them), labels B x U, and the logits B x T x (U+1) x V, the layout
 * rn_loss() takes. Rows beyond an utterance's length are computed but
 * receive a zero gradient from the loss; since every LSTM runs forward in
 * time, padding never changes a valid output.
 *
 * Parameters are laid out like PyTorch (nn.LSTM gate order i, f, g, o;
 * nn.Linear W is out x in); each has its own gradient and Adam moment
 * buffers of the same size (the companions a pruner masks in place).
 */
#ifndef RN_MODEL_H
#define RN_MODEL_H

#include <stdint.h>

#define RN_MAX_LAYERS 4
#define RN_MAX_PARAMS (4 * RN_MAX_LAYERS + 10)

enum { RN_OK = 0, RN_E_NOMEM = -1, RN_E_INVALID = -2 };

/** The kinds of matrix, for the observation hook and method tables. */
enum {
    RN_KIND_IH = 0,    /* an LSTM input matrix (4H x In) */
    RN_KIND_HH = 1,    /* an LSTM recurrent matrix (4H x H) */
    RN_KIND_JOINT = 2, /* a joint matrix (W_e, W_p, W_o) */
    RN_KIND_OTHER = 3  /* biases, the embedding */
};

typedef struct rn_param {
    char name[40];      /* PyTorch-style name */
    int64_t rows, cols; /* vectors: rows = length, cols = 1 */
    int64_t size;       /* rows * cols */
    int prunable;       /* LSTM and joint weight matrices */
    int kind;           /* RN_KIND_* */
    float *data, *grad, *exp_avg, *exp_avg_sq;
} rn_param;

typedef struct rn_config {
    int64_t in;          /* feature dimension F */
    int64_t enc_layers;  /* 1 .. RN_MAX_LAYERS (2) */
    int64_t enc_hidden;  /* (128) */
    int64_t embed;       /* prediction embedding width (32) */
    int64_t pred_hidden; /* (64) */
    int64_t joint;       /* (128) */
    int64_t vocab;       /* V: blank + labels (11) */
    int32_t blank;       /* (0) */
} rn_config;

/** Defaults above; in must be set by the caller. */
void rn_config_init(rn_config *c);

typedef struct rn_model {
    rn_config cfg;
    int nparams;
    rn_param p[RN_MAX_PARAMS];
    /* parameter indices */
    int enc[RN_MAX_LAYERS]; /* W_ih of layer l; W_hh, b_ih, b_hh follow */
    int emb;                /* embedding V x E */
    int pred;               /* W_ih of the prediction LSTM; W_hh, b_ih, b_hh follow */
    int w_e, b_e, w_p, w_o, b_o;
    int64_t adam_step;
} rn_model;

/** Allocate and initialise like PyTorch: LSTM parameters ~ U(-1/sqrt(H),
 *  1/sqrt(H)), Linear ~ U(-1/sqrt(in), 1/sqrt(in)), embedding ~ N(0, 1);
 *  Adam state zero. Deterministic in seed. */
int rn_model_init(rn_model *m, const rn_config *c, uint64_t seed);
void rn_model_free(rn_model *m);
/** Number of weights (all parameters) and of prunable weights. */
int64_t rn_model_numel(const rn_model *m, int prunable_only);

/** Observation hook: the input rows of prunable parameter `index` for the
 *  valid positions of the batch (contiguous row-major float32, rows x cols,
 *  valid only during the call). LSTM W_hh gets h_{t-1} (zero at t = 0),
 *  W_o gets the joint activations z of the valid (t, u) cells. */
typedef void (*rn_observe_fn)(void *user, int index, const float *x, int64_t rows,
                              int64_t cols);

typedef struct rn_ws rn_ws; /* activations and scratch, grown on demand */

int rn_ws_create(rn_ws **out);
void rn_ws_free(rn_ws *ws);

/** A padded batch (see above). labels are 1 .. V-1 (never blank);
 *  entries beyond u_len[b] are ignored. */
typedef struct rn_input {
    int64_t B, T, U, F;
    const float *x;        /* B x T x F */
    const int32_t *t_len;  /* B, 1 .. T */
    const int32_t *labels; /* B x U */
    const int32_t *u_len;  /* B, 0 .. U */
} rn_input;

/** Forward pass; returns the logits (B x T x (U+1) x V, owned by ws, valid
 *  until the next forward) in *logits. observe may be NULL. */
int rn_forward(const rn_model *m, const rn_input *in, rn_ws *ws, rn_observe_fn observe,
               void *user, const float **logits);

/** Backward of the last forward: overwrites every gradient with d L / d
 *  param where dlogits = d L / d logits (same shape as the logits). */
int rn_backward(rn_model *m, const rn_input *in, rn_ws *ws, const float *dlogits);

/** Encoder only (for decoding): the joint's encoder projection
 *  W_e enc + b_e, time-major T x B x J, owned by ws. */
int rn_encode(const rn_model *m, const rn_input *in, rn_ws *ws, const float **proj);

/** Greedy decoding of the batch (labels, t_len used; U ignored): at most
 *  max_symbols labels per frame. hyp receives per utterance up to cap
 *  labels (B x cap), hyp_len the lengths. */
int rn_greedy(const rn_model *m, const rn_input *in, rn_ws *ws, int max_symbols,
              int32_t *hyp, int32_t *hyp_len, int64_t cap);

/** Global L2 norm of all gradients (double accumulation). */
double rn_grad_norm(const rn_model *m);

/** Clip (PyTorch clip_grad_norm_: scale by clip / (norm + 1e-6) when that
 *  is < 1; clip <= 0: off), then one Adam step (torch.optim.Adam, no weight
 *  decay) with learning rate lr. Returns the norm before clipping. */
double rn_adam_step(rn_model *m, double lr, double clip);

#endif /* RN_MODEL_H */
