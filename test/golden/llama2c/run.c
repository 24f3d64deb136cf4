// Golden reference for ajar's llama2.c conversion: an independent C implementation of the inference algorithm
// published in Karpathy's llama2.c run.c (checkpoint and tokenizer readers, BPE encode, forward pass, greedy
// sampling, decode). It shares no code with ajar; make_reference.sh compiles it and writes expected.json.
//
// usage: run MODEL.bin TOKENIZER.bin generate PROMPT STEPS
//          line 1: prompt ids (BOS first), line 2: generated ids, then the decoded text as run.c prints it
//        run MODEL.bin TOKENIZER.bin encode TEXT...
//          one line of ids per TEXT (no BOS), as run.c's encode(text, bos=0, eos=0)
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
} Config;

typedef struct {
  float *token_embedding;  // (vocab, dim)
  float *rms_att;          // (layers, dim)
  float *wq;               // (layers, n_heads*hs, dim)
  float *wk;               // (layers, n_kv_heads*hs, dim)
  float *wv;               // (layers, n_kv_heads*hs, dim)
  float *wo;               // (layers, dim, n_heads*hs)
  float *rms_ffn;          // (layers, dim)
  float *w1;               // (layers, hidden, dim)
  float *w2;               // (layers, dim, hidden)
  float *w3;               // (layers, hidden, dim)
  float *rms_final;        // (dim,)
  float *wcls;             // (vocab, dim)
} Weights;

static void die(const char *msg) {
  fprintf(stderr, "run: %s\n", msg);
  exit(1);
}

static void *read_file(const char *path, long *size) {
  FILE *f = fopen(path, "rb");
  if (!f) die("cannot open file");
  fseek(f, 0, SEEK_END);
  *size = ftell(f);
  fseek(f, 0, SEEK_SET);
  void *buf = malloc(*size);
  if (fread(buf, 1, *size, f) != (size_t)*size) die("short read");
  fclose(f);
  return buf;
}

static void load_checkpoint(const char *path, Config *c, Weights *w) {
  long size;
  char *buf = read_file(path, &size);
  memcpy(c, buf, sizeof(Config));
  int shared = c->vocab_size > 0;
  c->vocab_size = abs(c->vocab_size);
  long hs = c->dim / c->n_heads, L = c->n_layers, D = c->dim, H = c->hidden_dim, V = c->vocab_size;
  float *p = (float *)(buf + sizeof(Config));
  w->token_embedding = p; p += V * D;
  w->rms_att = p; p += L * D;
  w->wq = p; p += L * D * (c->n_heads * hs);
  w->wk = p; p += L * D * (c->n_kv_heads * hs);
  w->wv = p; p += L * D * (c->n_kv_heads * hs);
  w->wo = p; p += L * (c->n_heads * hs) * D;
  w->rms_ffn = p; p += L * D;
  w->w1 = p; p += L * D * H;
  w->w2 = p; p += L * H * D;
  w->w3 = p; p += L * D * H;
  w->rms_final = p; p += D;
  p += c->seq_len * hs / 2;  // legacy freq_cis_real
  p += c->seq_len * hs / 2;  // legacy freq_cis_imag
  w->wcls = shared ? w->token_embedding : p;
  if (!shared) p += V * D;
  if ((char *)p - buf != size) die("checkpoint size disagrees with its header");
}

// ---------------------------------------------------------------- tokenizer

typedef struct {
  char **vocab;
  float *scores;
  int vocab_size;
  int max_token_length;
} Tokenizer;

static void load_tokenizer(const char *path, int vocab_size, Tokenizer *t) {
  FILE *f = fopen(path, "rb");
  if (!f) die("cannot open tokenizer");
  t->vocab_size = vocab_size;
  t->vocab = malloc(vocab_size * sizeof(char *));
  t->scores = malloc(vocab_size * sizeof(float));
  if (fread(&t->max_token_length, sizeof(int), 1, f) != 1) die("bad tokenizer");
  for (int i = 0; i < vocab_size; i++) {
    int len;
    if (fread(&t->scores[i], sizeof(float), 1, f) != 1) die("bad tokenizer");
    if (fread(&len, sizeof(int), 1, f) != 1) die("bad tokenizer");
    t->vocab[i] = malloc(len + 1);
    if (fread(t->vocab[i], 1, len, f) != (size_t)len) die("bad tokenizer");
    t->vocab[i][len] = '\0';
  }
  fclose(f);
}

// NOTE: a linear scan where run.c sorts and bisects; the result (first id with that string) is the same, since
// the vocabulary's strings are distinct.
static int lookup(const Tokenizer *t, const char *s) {
  for (int i = 0; i < t->vocab_size; i++) {
    if (strcmp(t->vocab[i], s) == 0) return i;
  }
  return -1;
}

// run.c's encode: a dummy " " before non-empty text, one token per UTF-8 character (bytes + 3 when the
// character is not in the vocabulary), then merge the adjacent pair whose concatenation has the highest score
// (leftmost on ties) until no pair is in the vocabulary.
static int encode(const Tokenizer *t, const char *text, int bos, int *tokens) {
  char *buf = malloc(t->max_token_length * 2 + 3);
  size_t len = 0;
  int n = 0;
  if (bos) tokens[n++] = 1;
  if (text[0] != '\0') {
    int space = lookup(t, " ");
    if (space < 0) die("no ' ' token");
    tokens[n++] = space;
  }
  for (const char *c = text; *c != '\0'; c++) {
    if ((*c & 0xC0) != 0x80) len = 0;
    buf[len++] = *c;
    buf[len] = '\0';
    if ((*(c + 1) & 0xC0) == 0x80 && len < 4) continue;
    int id = lookup(t, buf);
    if (id != -1) {
      tokens[n++] = id;
    } else {
      for (size_t i = 0; i < len; i++) tokens[n++] = (unsigned char)buf[i] + 3;
    }
    len = 0;
  }
  for (;;) {
    float best = -1e10f;
    int best_id = -1, best_at = -1;
    for (int i = 0; i + 1 < n; i++) {
      size_t a = strlen(t->vocab[tokens[i]]), b = strlen(t->vocab[tokens[i + 1]]);
      if (a + b > (size_t)t->max_token_length * 2) continue;
      memcpy(buf, t->vocab[tokens[i]], a);
      memcpy(buf + a, t->vocab[tokens[i + 1]], b);
      buf[a + b] = '\0';
      int id = lookup(t, buf);
      if (id != -1 && t->scores[id] > best) {
        best = t->scores[id];
        best_id = id;
        best_at = i;
      }
    }
    if (best_at == -1) break;
    tokens[best_at] = best_id;
    for (int i = best_at + 1; i + 1 < n; i++) tokens[i] = tokens[i + 1];
    n--;
  }
  free(buf);
  return n;
}

// run.c's decode: drop the leading space of a piece that follows BOS; <0xNN> pieces are the raw byte.
static void decode_into(const Tokenizer *t, int prev, int token, char *out, size_t *out_len) {
  const char *piece = t->vocab[token];
  if (prev == 1 && piece[0] == ' ') piece++;
  unsigned int byte;
  char tail;
  if (strlen(piece) == 6 && sscanf(piece, "<0x%02X%c", &byte, &tail) == 2 && tail == '>') {
    out[(*out_len)++] = (char)byte;
    return;
  }
  size_t n = strlen(piece);
  memcpy(out + *out_len, piece, n);
  *out_len += n;
}

// ---------------------------------------------------------------- forward pass

typedef struct {
  float *x, *xb, *xb2, *hb, *hb2, *q, *att, *logits;
  float *key_cache, *value_cache;  // (layers, seq_len, kv_dim)
} State;

static void rmsnorm(float *o, const float *x, const float *weight, int n) {
  float ss = 0.0f;
  for (int j = 0; j < n; j++) ss += x[j] * x[j];
  ss /= n;
  ss += 1e-5f;
  ss = 1.0f / sqrtf(ss);
  for (int j = 0; j < n; j++) o[j] = weight[j] * (ss * x[j]);
}

static void softmax(float *x, int n) {
  float max = x[0];
  for (int i = 1; i < n; i++) if (x[i] > max) max = x[i];
  float sum = 0.0f;
  for (int i = 0; i < n; i++) {
    x[i] = expf(x[i] - max);
    sum += x[i];
  }
  for (int i = 0; i < n; i++) x[i] /= sum;
}

// out (d,) = W (d, n) @ x (n,)
static void matmul(float *out, const float *x, const float *w, int n, int d) {
  for (int i = 0; i < d; i++) {
    float v = 0.0f;
    for (int j = 0; j < n; j++) v += w[(long)i * n + j] * x[j];
    out[i] = v;
  }
}

static float *forward(const Config *c, const Weights *w, State *s, int token, int pos) {
  int dim = c->dim, hs = dim / c->n_heads, kv_dim = c->n_kv_heads * hs, q_dim = c->n_heads * hs;
  int kv_mul = c->n_heads / c->n_kv_heads, hidden = c->hidden_dim;
  float *x = s->x;
  memcpy(x, w->token_embedding + (long)token * dim, dim * sizeof(float));
  for (long l = 0; l < c->n_layers; l++) {
    rmsnorm(s->xb, x, w->rms_att + l * dim, dim);
    long loff = l * c->seq_len * kv_dim;
    float *k = s->key_cache + loff + (long)pos * kv_dim;
    float *v = s->value_cache + loff + (long)pos * kv_dim;
    matmul(s->q, s->xb, w->wq + l * dim * q_dim, dim, q_dim);
    matmul(k, s->xb, w->wk + l * dim * kv_dim, dim, kv_dim);
    matmul(v, s->xb, w->wv + l * dim * kv_dim, dim, kv_dim);
    // RoPE on adjacent pairs (2i, 2i+1) of each head, frequency 10000^(-2i/hs).
    for (int i = 0; i < q_dim; i += 2) {
      int head_dim = i % hs;
      float freq = 1.0f / powf(10000.0f, head_dim / (float)hs);
      float angle = pos * freq;
      float fcr = cosf(angle), fci = sinf(angle);
      int rotn = i < kv_dim ? 2 : 1;
      for (int r = 0; r < rotn; r++) {
        float *vec = r == 0 ? s->q : k;
        float v0 = vec[i], v1 = vec[i + 1];
        vec[i] = v0 * fcr - v1 * fci;
        vec[i + 1] = v0 * fci + v1 * fcr;
      }
    }
    // Grouped-query attention: query head h reads key/value head h / kv_mul.
    for (int h = 0; h < c->n_heads; h++) {
      float *q = s->q + h * hs;
      float *att = s->att + (long)h * c->seq_len;
      for (int t = 0; t <= pos; t++) {
        float *kt = s->key_cache + loff + (long)t * kv_dim + (h / kv_mul) * hs;
        float score = 0.0f;
        for (int i = 0; i < hs; i++) score += q[i] * kt[i];
        att[t] = score / sqrtf((float)hs);
      }
      softmax(att, pos + 1);
      float *xb = s->xb + h * hs;
      memset(xb, 0, hs * sizeof(float));
      for (int t = 0; t <= pos; t++) {
        float *vt = s->value_cache + loff + (long)t * kv_dim + (h / kv_mul) * hs;
        for (int i = 0; i < hs; i++) xb[i] += att[t] * vt[i];
      }
    }
    matmul(s->xb2, s->xb, w->wo + l * q_dim * dim, q_dim, dim);
    for (int i = 0; i < dim; i++) x[i] += s->xb2[i];
    // SwiGLU feed-forward: w2(silu(w1 x) * w3 x).
    rmsnorm(s->xb, x, w->rms_ffn + l * dim, dim);
    matmul(s->hb, s->xb, w->w1 + l * dim * hidden, dim, hidden);
    matmul(s->hb2, s->xb, w->w3 + l * dim * hidden, dim, hidden);
    for (int i = 0; i < hidden; i++) {
      float val = s->hb[i];
      val *= 1.0f / (1.0f + expf(-val));
      s->hb[i] = val * s->hb2[i];
    }
    matmul(s->xb, s->hb, w->w2 + l * dim * hidden, hidden, dim);
    for (int i = 0; i < dim; i++) x[i] += s->xb[i];
  }
  rmsnorm(x, x, w->rms_final, dim);
  matmul(s->logits, x, w->wcls, dim, c->vocab_size);
  return s->logits;
}

static int argmax(const float *v, int n) {
  int best = 0;
  for (int i = 1; i < n; i++) if (v[i] > v[best]) best = i;
  return best;
}

static void print_ids(const int *ids, int n) {
  for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
  printf("\n");
}

int main(int argc, char **argv) {
  if (argc < 4) die("usage: run MODEL.bin TOKENIZER.bin (generate PROMPT STEPS | encode TEXT...)");
  Config c;
  Weights w;
  load_checkpoint(argv[1], &c, &w);
  Tokenizer t;
  load_tokenizer(argv[2], c.vocab_size, &t);

  if (strcmp(argv[3], "encode") == 0) {
    for (int a = 4; a < argc; a++) {
      int *ids = malloc((strlen(argv[a]) + 3) * sizeof(int));
      int n = encode(&t, argv[a], 0, ids);
      print_ids(ids, n);
      free(ids);
    }
    return 0;
  }
  if (strcmp(argv[3], "generate") != 0 || argc != 6) die("usage: run MODEL.bin TOKENIZER.bin generate PROMPT STEPS");
  const char *prompt = argv[4];
  int max_new = atoi(argv[5]);
  int *prompt_ids = malloc((strlen(prompt) + 3) * sizeof(int));
  int n_prompt = encode(&t, prompt, 1, prompt_ids);

  int hs = c.dim / c.n_heads, kv_dim = c.n_kv_heads * hs;
  State s;
  s.x = calloc(c.dim, sizeof(float));
  s.xb = calloc(c.n_heads * hs > c.dim ? c.n_heads * hs : c.dim, sizeof(float));
  s.xb2 = calloc(c.dim, sizeof(float));
  s.hb = calloc(c.hidden_dim, sizeof(float));
  s.hb2 = calloc(c.hidden_dim, sizeof(float));
  s.q = calloc(c.n_heads * hs, sizeof(float));
  s.att = calloc((long)c.n_heads * c.seq_len, sizeof(float));
  s.logits = calloc(c.vocab_size, sizeof(float));
  s.key_cache = calloc((long)c.n_layers * c.seq_len * kv_dim, sizeof(float));
  s.value_cache = calloc((long)c.n_layers * c.seq_len * kv_dim, sizeof(float));

  int *generated = malloc(max_new * sizeof(int));
  int n_gen = 0;
  char *text = malloc((size_t)(n_prompt + max_new) * (t.max_token_length + 1) + 1);
  size_t text_len = 0;
  // run.c's loop: feed the prompt one token at a time, then the argmax; stop at BOS (a new sequence).
  int token = prompt_ids[0];
  for (int pos = 0; pos < c.seq_len && n_gen < max_new; pos++) {
    float *logits = forward(&c, &w, &s, token, pos);
    int next;
    if (pos < n_prompt - 1) {
      next = prompt_ids[pos + 1];
    } else {
      next = argmax(logits, c.vocab_size);
      generated[n_gen++] = next;
    }
    if (next == 1) break;
    decode_into(&t, token, next, text, &text_len);
    token = next;
  }
  print_ids(prompt_ids, n_prompt);
  print_ids(generated, n_gen);
  fwrite(text, 1, text_len, stdout);
  return 0;
}
