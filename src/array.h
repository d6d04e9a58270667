/*
 * array - room in a growing array.
 *
 * Arrays that grow one element at a time while a configuration loads are
 * grown by half again instead: realloc() cannot always grow in place
 * (under AddressSanitizer it never does), and growing by one would copy
 * the whole array once per element, making a load quadratic.
 */
#ifndef MILTERHOST_ARRAY_H
#define MILTERHOST_ARRAY_H

#include <stddef.h>

/*
 * array, of *cap elements of size bytes, with room for element n: moved
 * and grown by half again (to 4 at least) if full, *cap updated.  Returns
 * the array, or NULL if out of memory (array unchanged).
 */
void *array_grow(void *array, size_t *cap, size_t n, size_t size);

#endif /* MILTERHOST_ARRAY_H */
