/*
 * array - room in a growing array.  See array.h.
 */
#include <stdint.h>
#include <stdlib.h>

#include "array.h"

void *
array_grow(void *array, size_t *cap, size_t n, size_t size)
{
	size_t want;

	if (n < *cap)
		return array;
	want = *cap < 4 ? 4 : *cap + *cap / 2;
	if (want > SIZE_MAX / size || (array = realloc(array, want * size)) ==
	    NULL)
		return NULL;
	*cap = want;
	return array;
}
