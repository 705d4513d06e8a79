/* version.h - the release, as shown by -V and CAPA IMPLEMENTATION. */
#ifndef MBOXPOP3D_VERSION_H
#define MBOXPOP3D_VERSION_H
#define MBOXPOP3D_VERSION "0.1.0"
#endif
