/* backend/env.c - the LMDB environment (in progress). */
