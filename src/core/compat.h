/*
 * compat.h: force-included before every C file of airlock's own (not tests):
 * the common system headers first, then banned.h, so that the banned names
 * are poisoned in our code without breaking the system prototypes.
 */
#ifndef AL_CORE_COMPAT_H
#define AL_CORE_COMPAT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <wchar.h>

#include "core/banned.h"

#endif
