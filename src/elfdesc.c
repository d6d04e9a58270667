/*
 * elfdesc - read the ABI version of a plugin's descriptor from its file.
 * See elfdesc.h.
 *
 * Why the file is read rather than loaded first: dlopen(RTLD_NOW) binds
 * every symbol the plugin uses before it returns, so the descriptor of a
 * plugin calling a host function of a newer ABI minor is never seen.
 * RTLD_LAZY is not enough: it defers only calls through the PLT, while
 * references to data (a host variable, the address of a host function
 * kept in a table) are bound at load time all the same, as is everything
 * in a plugin linked with -z now; and the plugin's constructors would
 * run before its version was checked.
 *
 * The way to the fields: the ELF header; the section headers, for the
 * dynamic symbol table (SHT_DYNSYM) and its string table; the symbol's
 * address; the program headers, for the PT_LOAD segment holding it and
 * so its place in the file; 8 bytes there.  abi_major, abi_minor and
 * size are plain integers stored in the file as they are: no relocation
 * touches them.  Every offset and size taken from the file is checked
 * against the file's size before use, and the file is read with pread(),
 * never mapped: a truncated or hostile file gives an error, not a crash.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elfdesc.h"

/* The host's own class and byte order: the only ones dlopen() takes. */
#if UINTPTR_MAX > 0xffffffffu
#define NATIVE_CLASS ELFCLASS64
typedef Elf64_Ehdr Ehdr;
typedef Elf64_Shdr Shdr;
typedef Elf64_Phdr Phdr;
typedef Elf64_Sym Sym;
#define SYM_TYPE(info) ELF64_ST_TYPE(info)
#else
#define NATIVE_CLASS ELFCLASS32
typedef Elf32_Ehdr Ehdr;
typedef Elf32_Shdr Shdr;
typedef Elf32_Phdr Phdr;
typedef Elf32_Sym Sym;
#define SYM_TYPE(info) ELF32_ST_TYPE(info)
#endif

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define NATIVE_DATA ELFDATA2LSB
#else
#define NATIVE_DATA ELFDATA2MSB
#endif

/* abi_major, abi_minor and size */
#define VERSION_BYTES 8

struct elf_file {
	int fd;
	uint64_t size;
	Ehdr eh;
	char *why;
	size_t whylen;
};

static int __attribute__((format(printf, 2, 3)))
fail(struct elf_file *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(f->why, f->whylen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Read len bytes at off, which must lie inside the file. */
static int
read_at(struct elf_file *f, uint64_t off, void *buf, size_t len,
	const char *what)
{
	char *p = buf;
	ssize_t n;

	if (off > f->size || len > f->size - off)
		return fail(f, "%s would lie beyond the end of the file", what);
	while (len > 0) {
		n = pread(f->fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return fail(f, "cannot read %s: %s", what,
			    n < 0 ? strerror(errno) : "the file shrank");
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

/* A table of count entries of entsize bytes at off, to free; or NULL. */
static void *
read_table(struct elf_file *f, uint64_t off, uint64_t count, size_t entsize,
	   const char *what)
{
	void *t;

	if (count == 0 || count > f->size / entsize) {
		fail(f, "%s: impossible size", what);
		return NULL;
	}
	if ((t = malloc((size_t)count * entsize)) == NULL) {
		fail(f, "out of memory");
		return NULL;
	}
	if (read_at(f, off, t, (size_t)count * entsize, what) < 0) {
		free(t);
		return NULL;
	}
	return t;
}

static int
read_header(struct elf_file *f)
{
	Ehdr *eh = &f->eh;

	if (f->size < sizeof *eh)
		return fail(f, "not an ELF file (too short)");
	if (read_at(f, 0, eh, sizeof *eh, "the ELF header") < 0)
		return -1;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0)
		return fail(f, "not an ELF file");
	if (eh->e_ident[EI_CLASS] != NATIVE_CLASS ||
	    eh->e_ident[EI_DATA] != NATIVE_DATA)
		return fail(f, "not of this host's ELF class and byte order");
	if (eh->e_type != ET_DYN)
		return fail(f, "not an ELF shared object");
	if (eh->e_shentsize != sizeof(Shdr) || eh->e_shnum == 0)
		return fail(f, "no section headers");
	if (eh->e_phentsize != sizeof(Phdr) || eh->e_phnum == 0 ||
	    eh->e_phnum == PN_XNUM)
		return fail(f, "no program headers");
	return 0;
}

/* The defined object called name among the nsyms of syms, or NULL. */
static const Sym *
lookup(const Sym *syms, size_t nsyms, const char *strs, size_t strsz,
       const char *name)
{
	size_t len = strlen(name) + 1;

	for (size_t i = 0; i < nsyms; i++) {
		const Sym *s = &syms[i];

		if (s->st_name >= strsz || strsz - s->st_name < len ||
		    memcmp(strs + s->st_name, name, len) != 0)
			continue;
		if (s->st_shndx != SHN_UNDEF && s->st_shndx < SHN_LORESERVE &&
		    SYM_TYPE(s->st_info) == STT_OBJECT)
			return s;
	}
	return NULL;
}

/* The address of the object name, from the dynamic symbol table. */
static int
find_symbol(struct elf_file *f, const char *name, uint64_t *addr)
{
	Shdr *sh, *dynsym = NULL, *str;
	Sym *syms = NULL;
	const Sym *s = NULL;
	char *strs = NULL;
	size_t nsyms = 0;

	sh = read_table(f, f->eh.e_shoff, f->eh.e_shnum, sizeof *sh,
	    "the section headers");
	if (sh == NULL)
		return -1;
	for (size_t i = 0; i < f->eh.e_shnum && dynsym == NULL; i++)
		if (sh[i].sh_type == SHT_DYNSYM)
			dynsym = &sh[i];
	if (dynsym == NULL || dynsym->sh_entsize != sizeof *syms ||
	    dynsym->sh_link >= f->eh.e_shnum) {
		free(sh);
		return fail(f, "no dynamic symbol table");
	}
	str = &sh[dynsym->sh_link];
	nsyms = dynsym->sh_size / sizeof *syms;
	if ((syms = read_table(f, dynsym->sh_offset, nsyms, sizeof *syms,
	    "the dynamic symbols")) != NULL &&
	    (strs = read_table(f, str->sh_offset, str->sh_size, 1,
	    "the dynamic symbol names")) != NULL &&
	    (s = lookup(syms, nsyms, strs, str->sh_size, name)) == NULL)
		fail(f, "no %s in the dynamic symbol table", name);
	if (s != NULL)
		*addr = s->st_value;
	free(strs);
	free(syms);
	free(sh);
	return s != NULL ? 0 : -1;
}

/* Where len bytes at address addr are in the file. */
static int
file_offset(struct elf_file *f, uint64_t addr, size_t len, uint64_t *off)
{
	Phdr *ph;
	int rc = -1;

	ph = read_table(f, f->eh.e_phoff, f->eh.e_phnum, sizeof *ph,
	    "the program headers");
	if (ph == NULL)
		return -1;
	for (size_t i = 0; i < f->eh.e_phnum && rc < 0; i++) {
		uint64_t at = addr - ph[i].p_vaddr;

		if (ph[i].p_type == PT_LOAD && addr >= ph[i].p_vaddr &&
		    at <= ph[i].p_filesz && ph[i].p_filesz - at >= len) {
			*off = ph[i].p_offset + at;
			rc = 0;
		}
	}
	free(ph);
	return rc == 0 ? 0 : fail(f, "address 0x%llx is in no loaded part "
	    "of the file", (unsigned long long)addr);
}

int
elfdesc_read(const char *path, const char *symbol,
	     struct elfdesc_version *out, char *why, size_t whylen)
{
	struct elf_file f = { .fd = -1, .why = why, .whylen = whylen };
	unsigned char b[VERSION_BYTES];
	struct stat st;
	uint64_t addr = 0, off = 0;
	int rc = -1;

	/* O_NONBLOCK: a FIFO must not stop the loader; it is refused below. */
	if ((f.fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)) < 0)
		return fail(&f, "cannot open: %s", strerror(errno));
	if (fstat(f.fd, &st) < 0) {
		fail(&f, "cannot stat: %s", strerror(errno));
		goto done;
	}
	if (!S_ISREG(st.st_mode)) {
		fail(&f, "not a file");
		goto done;
	}
	f.size = (uint64_t)st.st_size;
	if (read_header(&f) < 0 || find_symbol(&f, symbol, &addr) < 0 ||
	    file_offset(&f, addr, sizeof b, &off) < 0 ||
	    read_at(&f, off, b, sizeof b, symbol) < 0)
		goto done;
	memcpy(&out->abi_major, b, 2);
	memcpy(&out->abi_minor, b + 2, 2);
	memcpy(&out->size, b + 4, 4);
	rc = 0;
done:
	close(f.fd);
	return rc;
}
