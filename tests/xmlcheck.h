/* A small XML well-formedness checker for the SVGs convoy writes (tests only): one root element,
 * properly nested and closed tags, quoted and unique attributes, and only the five predefined
 * entities or character references. Returns NULL when well-formed, else what is wrong. */
#ifndef CONVOY_TEST_XMLCHECK_H
#define CONVOY_TEST_XMLCHECK_H

#include <ctype.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static const char *xml_entity(const char *p) /* p at '&': the end of a valid reference, or NULL */
{
    static const char *const named[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
    for (int i = 0; i < 5; i++)
        if (strncmp(p, named[i], strlen(named[i])) == 0) return p + strlen(named[i]);
    if (p[1] != '#') return NULL;
    const char *q = p + 2;
    const int hex = *q == 'x';
    q += hex;
    const char *digits = q;
    while (hex ? isxdigit((unsigned char)*q) : isdigit((unsigned char)*q)) q++;
    return q > digits && *q == ';' ? q + 1 : NULL;
}

static int xml_name_start(char c) { return isalpha((unsigned char)c) || c == '_' || c == ':'; }
static int xml_name_char(char c) { return xml_name_start(c) || isdigit((unsigned char)c) || c == '-' || c == '.'; }

/* Checks text (or an attribute value, up to `stop`) for stray '<' and bad '&'. */
static const char *xml_text(const char **pp, char stop, char *why, size_t n)
{
    const char *p = *pp;
    for (; *p && *p != stop; p++) {
        if (*p == '&') {
            const char *e = xml_entity(p);
            if (!e) return snprintf(why, n, "bad entity near '%.12s'", p), why;
            p = e - 1;
        } else if (*p == '<' && stop != '<') {
            return snprintf(why, n, "'<' inside an attribute value"), why;
        }
    }
    *pp = p;
    return NULL;
}

static const char *xml_check(const char *s, char *why, size_t n)
{
    enum { DEPTH = 64 };
    char stack[DEPTH][64];
    int depth = 0, roots = 0;
    const char *p = s;
    if (strncmp(p, "<?xml", 5) == 0) {
        const char *e = strstr(p, "?>");
        if (!e) return snprintf(why, n, "unterminated XML declaration"), why;
        p = e + 2;
    }
    while (*p) {
        if (*p != '<') {
            if (depth == 0 && !isspace((unsigned char)*p)) return snprintf(why, n, "text outside the root"), why;
            if (xml_text(&p, '<', why, n)) return why;
            continue;
        }
        if (p[1] == '/') { /* end tag */
            p += 2;
            const char *name = p;
            while (xml_name_char(*p)) p++;
            const size_t len = (size_t)(p - name);
            while (isspace((unsigned char)*p)) p++;
            if (*p != '>') return snprintf(why, n, "bad end tag"), why;
            if (depth == 0 || strlen(stack[depth - 1]) != len || strncmp(stack[depth - 1], name, len) != 0)
                return snprintf(why, n, "end tag </%.*s> does not match <%s>", (int)len, name,
                                depth ? stack[depth - 1] : "(none)"), why;
            depth--;
            p++;
            continue;
        }
        p++; /* start tag */
        if (!xml_name_start(*p)) return snprintf(why, n, "bad tag name near '%.12s'", p), why;
        const char *name = p;
        while (xml_name_char(*p)) p++;
        char tag[64];
        snprintf(tag, sizeof tag, "%.*s", (int)(p - name), name);
        char attrs[32][64];
        int nattrs = 0;
        for (;;) {
            const int space = isspace((unsigned char)*p);
            while (isspace((unsigned char)*p)) p++;
            if (*p == '>' || (p[0] == '/' && p[1] == '>')) break;
            if (!space || !xml_name_start(*p)) return snprintf(why, n, "<%s>: bad attribute near '%.12s'", tag, p), why;
            const char *an = p;
            while (xml_name_char(*p)) p++;
            snprintf(attrs[nattrs % 32], 64, "%.*s", (int)(p - an), an);
            for (int i = 0; i < nattrs && i < 32; i++)
                if (strcmp(attrs[i], attrs[nattrs % 32]) == 0)
                    return snprintf(why, n, "<%.40s>: attribute %.40s twice", tag, attrs[i]), why;
            nattrs++;
            if (*p != '=' || (p[1] != '"' && p[1] != '\'')) return snprintf(why, n, "<%s>: unquoted attribute", tag), why;
            const char q = p[1];
            p += 2;
            if (xml_text(&p, q, why, n)) return why;
            if (*p != q) return snprintf(why, n, "<%s>: unterminated attribute", tag), why;
            p++;
        }
        if (depth == 0 && ++roots > 1) return snprintf(why, n, "more than one root element"), why;
        if (*p == '/') {
            p += 2;
        } else {
            if (depth == DEPTH) return snprintf(why, n, "nested too deep"), why;
            snprintf(stack[depth++], 64, "%s", tag);
            p++;
        }
    }
    if (depth) return snprintf(why, n, "<%s> not closed", stack[depth - 1]), why;
    if (!roots) return snprintf(why, n, "no root element"), why;
    return NULL;
}

/* Occurrences of needle in hay. */
static int count_of(const char *hay, const char *needle)
{
    int c = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) c++;
    return c;
}

/* The whole file as a string (malloc'd), or NULL. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    const long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s) s[n] = '\0';
    fclose(f);
    return s;
}

#endif
