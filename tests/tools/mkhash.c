/*
 * mkhash - prints a crypt(3) hash of a password, for test and demo
 * passwd files:  mkhash PASSWORD [PREFIX]   (PREFIX default "$6$",
 * sha512crypt; "$y$" yescrypt, "$2b$" bcrypt, "$1$" md5crypt).
 */
#include <crypt.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: mkhash PASSWORD [PREFIX]\n");
        return 2;
    }
    const char *prefix = argc == 3 ? argv[2] : "$6$";
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    if (crypt_gensalt_rn(prefix, 0, NULL, 0, salt, sizeof salt) == NULL) {
        perror("crypt_gensalt_rn");
        return 1;
    }
    struct crypt_data data;
    memset(&data, 0, sizeof data);
    const char *hash = crypt_r(argv[1], salt, &data);
    if (hash == NULL || hash[0] == '*') {
        fprintf(stderr, "mkhash: crypt failed for prefix %s\n", prefix);
        return 1;
    }
    printf("%s\n", hash);
    return 0;
}
