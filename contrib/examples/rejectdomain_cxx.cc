/*
 * rejectdomain_cxx - contrib/examples/rejectdomain.c in C++17: refuse mail
 * from one sender domain with a custom reply.  It shows what a C++ plugin
 * needs: a descriptor filled without designated initializers (C++17 has
 * none), exported with C linkage, and no exception leaving the plugin.
 *
 *	[plugin:no-spammers]
 *	module = rejectdomain_cxx
 *	domain = spam.example
 *
 * Build: c++ -std=c++17 -shared -fPIC $(pkg-config --cflags milterhost) \
 *	-o rejectdomain_cxx.so rejectdomain_cxx.cc
 */
#include <algorithm>
#include <cctype>
#include <cstring>
#include <new>
#include <string>

#include <milterhost/plugin.h>

namespace {

struct state {
	std::string domain; // "@spam.example", lower case
};

std::string
lower(std::string s)
{
	std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) {
		return static_cast<char>(std::tolower(c));
	});
	return s;
}

int
rd_init(const struct mh_init *init, void **state_out)
{
	const char *domain = nullptr;

	for (size_t i = 0; i < init->nsettings; i++) {
		const mh_setting &s = init->settings[i];

		if (std::strcmp(s.key, "domain") != 0)
			return mh_init_error(init, s.key, "unknown key");
		domain = s.value;
	}
	if (domain == nullptr || *domain == '\0')
		return mh_init_error(init, "domain", "a domain is required");
	try {
		*state_out = new state{ "@" + lower(domain) };
	} catch (const std::bad_alloc &) {
		return mh_init_error(init, nullptr, "out of memory");
	}
	return 0;
}

void
rd_fini(void *st)
{
	delete static_cast<state *>(st);
}

mh_status
rd_envfrom(mh_ctx *ctx, const char *sender, const char *const *args)
{
	const state *st = static_cast<const state *>(mh_instance_state(ctx));

	(void)args; // ESMTP arguments: not needed here
	try {
		// sender is "<user@domain>" as the client wrote it
		std::string s = lower(sender);
		size_t d = st->domain.size();

		if (s.size() > d + 1 && s.back() == '>' &&
		    s.compare(s.size() - 1 - d, d, st->domain) == 0) {
			mh_log(ctx, MH_LOG_INFO, "refusing %s", sender);
			mh_set_reply(ctx, "550", "5.7.1", "mail from this "
			    "domain is not accepted here");
			return MH_REJECT;
		}
	} catch (const std::bad_alloc &) {
		mh_log(ctx, MH_LOG_ERR, "out of memory");
		return MH_FAIL;
	}
	return MH_CONTINUE;
}

// C++17 has no designated initializers: fill the descriptor field by
// field in a constexpr function; the compiler still initializes it at
// compile time.  Fields not set stay 0 or NULL.
constexpr mh_plugin
descriptor()
{
	mh_plugin d{};

	d.abi_major = MH_ABI_MAJOR;
	d.abi_minor = MH_ABI_MINOR;
	d.size = sizeof d;
	d.name = "rejectdomain_cxx";
	d.version = "1.0";
	d.description = "refuse mail from one sender domain (C++)";
	d.init = rd_init;
	d.fini = rd_fini;
	d.envfrom = rd_envfrom;
	return d;
}

} // namespace

// The host looks the descriptor up by its C name.
extern "C" const mh_plugin milterhost_plugin = descriptor();
