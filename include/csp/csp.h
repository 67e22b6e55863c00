/**
 * @file csp.h
 * @brief libcsp umbrella header: include this one file.
 *
 * libcsp prunes neural-network weights during training with
 * compressed-sensing-based pruning (CSP). See docs/guide.md for the tour and
 * docs/abi.md for the stability promise.
 */
#ifndef CSP_CSP_H
#define CSP_CSP_H

#include <csp/core.h>
#include <csp/io.h>
#include <csp/pruner.h>
#include <csp/schedule.h>
#include <csp/sensing.h>
#include <csp/solver.h>
#include <csp/sparse.h>

#endif /* CSP_CSP_H */
