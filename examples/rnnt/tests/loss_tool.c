/* loss_tool.c - rn_loss() on a batch read from a file, for
 * test_loss_torchaudio.py. Input IN: int32 B, T, U1, V, blank, then float32
 * logits (B*T*U1*V), int32 labels (B*(U1-1)), int32 t_len (B), int32 u_len
 * (B). Output OUT: int32 status, float32 loss (B), float32 grad (same shape
 * as the logits). Usage: loss_tool IN OUT */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../rnnt_loss.h"

static int rd(FILE *f, void *p, size_t size, size_t n)
{
    return fread(p, size, n, f) == n;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s IN OUT\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    int32_t h[5];
    if (!f || !rd(f, h, sizeof *h, 5) || h[0] < 1 || h[1] < 1 || h[2] < 1 || h[3] < 2) {
        fprintf(stderr, "%s: bad input\n", argv[1]);
        return 2;
    }
    size_t B = (size_t)h[0], n = B * (size_t)h[1] * (size_t)h[2] * (size_t)h[3];
    size_t nl = B * (size_t)(h[2] - 1);
    float *z = malloc(n * sizeof *z), *g = malloc(n * sizeof *g);
    float *loss = malloc(B * sizeof *loss);
    int32_t *y = malloc((nl + 1) * sizeof *y), *tl = malloc(B * sizeof *tl);
    int32_t *ul = malloc(B * sizeof *ul);
    if (!z || !g || !loss || !y || !tl || !ul || !rd(f, z, sizeof *z, n) ||
        !rd(f, y, sizeof *y, nl) || !rd(f, tl, sizeof *tl, B) || !rd(f, ul, sizeof *ul, B)) {
        fprintf(stderr, "%s: short input\n", argv[1]);
        return 2;
    }
    fclose(f);
    int32_t rc = rn_loss(z, y, tl, ul, h[0], h[1], h[2], h[3], h[4], loss, g);
    FILE *o = fopen(argv[2], "wb");
    if (!o || fwrite(&rc, sizeof rc, 1, o) != 1 || fwrite(loss, sizeof *loss, B, o) != B ||
        fwrite(g, sizeof *g, n, o) != n || fclose(o) != 0) {
        fprintf(stderr, "%s: cannot write\n", argv[2]);
        return 2;
    }
    free(z); free(g); free(loss); free(y); free(tl); free(ul);
    return 0;
}
