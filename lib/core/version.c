/* Run-time version and the header/library handshake. */
#include "internal.h"

CSP_API uint32_t csp_version_number(void) { return (uint32_t)CSP_VERSION_NUMBER; }

CSP_API const char *csp_version_string(void) { return CSP_VERSION_STRING; }

CSP_API uint32_t csp_abi_version(void) { return (uint32_t)CSP_ABI_VERSION; }

CSP_API int32_t csp_check_version(uint32_t header_abi, uint32_t header_version) {
    if (header_abi != (uint32_t)CSP_ABI_VERSION)
        return CSP_E_VERSION;
    /* Compare MAJOR.MINOR only: patch releases add nothing. */
    if (header_version / 100 > (uint32_t)CSP_VERSION_NUMBER / 100)
        return CSP_E_VERSION;
    if (header_version / 10000 != (uint32_t)CSP_VERSION_MAJOR)
        return CSP_E_VERSION;
    return CSP_OK;
}
