/* Word comparisons for messages and aliases (convoy/words.h): the loose equality that lets a
 * Keras user's CamelCase stand for convoy's snake case, and the edit distance behind every
 * "did you mean ...?". */
#include "convoy/words.h"

#include <ctype.h>
#include <string.h>

enum { WORD_MAX = 64 };

bool cv_word_loose_eq(const char *a, const char *b)
{
    for (;;) {
        while (*a == '_') a++;
        while (*b == '_') b++;
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return false;
        if (!*a) return true;
        a++, b++;
    }
}

int cv_word_distance(const char *a, const char *b)
{
    const int n = (int)strlen(a), m = (int)strlen(b);
    if (n >= WORD_MAX || m >= WORD_MAX) return WORD_MAX;
    /* rows i-2, i-1 and i of the (n+1) x (m+1) table */
    int d[3][WORD_MAX + 1];
    for (int j = 0; j <= m; j++) d[0][j] = j;
    for (int i = 1; i <= n; i++) {
        int *row = d[i % 3], *up = d[(i - 1) % 3], *up2 = d[(i + 1) % 3];
        row[0] = i;
        for (int j = 1; j <= m; j++) {
            const int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
            int best = up[j - 1] + (ca != cb);
            if (up[j] + 1 < best) best = up[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) && tolower((unsigned char)a[i - 2]) == cb &&
                up2[j - 2] + 1 < best)
                best = up2[j - 2] + 1;
            row[j] = best;
        }
    }
    return d[n % 3][m];
}

const char *cv_word_nearest(const char *word, const char *const *cands, int n)
{
    const int len = (int)strlen(word);
    const int limit = len < 6 ? 1 : 2; /* a third of the length, at least 1, at most 2 */
    const char *best = NULL;
    int best_d = limit + 1;
    for (int i = 0; i < n; i++) {
        if (!cands[i]) continue;
        const int dist = cv_word_distance(word, cands[i]);
        /* a word replaced whole ("3" for "0") is no typo */
        if (dist < best_d && dist < len && dist < (int)strlen(cands[i])) best_d = dist, best = cands[i];
    }
    return best;
}
