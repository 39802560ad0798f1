/* Deliberately broken plugins, one per load check, built from this file with
 * one of: BROKEN_NO_ENTRY     exports no latefuse entry symbol
 *   BROKEN_ABI_V2_ONLY  exports latefuse_plugin_v2 only (built for a newer ABI)
 *   BROKEN_ABI_MAJOR    latefuse_plugin_v1 whose descriptor says ABI 2.0
 *   BROKEN_ABI_MINOR    latefuse_plugin_v1 whose descriptor says a minor newer
 * than ours
 *   BROKEN_ABI_1_1_MODEL a sane dense model of width 3 built for ABI 1.1,
 * before regression pipelines: a regression pipeline must refuse it
 * Plain C against the ABI header: no SDK, as a team with another
 * toolchain would write. */
#include <latefuse/plugin.h>

#ifndef BROKEN_NAME
#error "define BROKEN_NAME"
#endif

static LfStatus* Create(const LfCreateContext* context, void** instance) {
  (void)context;
  *instance = (void*)1;
  return NULL;
}
static void Destroy(void* instance) { (void)instance; }
static LfStatus* Describe(void* instance, LfModelContract* contract) {
  (void)instance;
#if defined(BROKEN_ABI_1_1_MODEL)
  /* What an ABI 1.1 model describes: no task, so no reports_variance. */
  contract->input_kind = LF_INPUT_DENSE;
  contract->input_width = 3;
#else
  (void)contract;
#endif
  return NULL;
}
static LfStatus* Infer(void* instance, const LfBatch* batch,
                       LfProbabilities* out) {
  (void)instance;
  (void)batch;
  (void)out;
  return NULL;
}

static const LfModelApi kApi = {sizeof(LfModelApi), Create, Destroy, Describe,
                                Infer};

static LfPluginDescriptor Descriptor(uint16_t major, uint16_t minor) {
  LfPluginDescriptor d = {sizeof(LfPluginDescriptor),
                          major,
                          minor,
                          LF_KIND_MODEL,
                          BROKEN_NAME,
                          "1.0.0",
                          "broken on purpose",
                          "Apache-2.0",
                          "test",
                          &kApi,
                          NULL};
  return d;
}

#if defined(BROKEN_NO_ENTRY)
LATEFUSE_EXPORT int latefuse_plugin(void) { return 0; }
#elif defined(BROKEN_ABI_V2_ONLY)
LATEFUSE_EXPORT const LfPluginDescriptor* latefuse_plugin_v2(
    const LfHostApi* host) {
  static LfPluginDescriptor d;
  (void)host;
  d = Descriptor(2, 0);
  return &d;
}
#elif defined(BROKEN_ABI_MAJOR)
LATEFUSE_EXPORT const LfPluginDescriptor* latefuse_plugin_v1(
    const LfHostApi* host) {
  static LfPluginDescriptor d;
  (void)host;
  d = Descriptor(2, 0);
  return &d;
}
#elif defined(BROKEN_ABI_MINOR)
LATEFUSE_EXPORT const LfPluginDescriptor* latefuse_plugin_v1(
    const LfHostApi* host) {
  static LfPluginDescriptor d;
  (void)host;
  d = Descriptor(LATEFUSE_ABI_MAJOR, LATEFUSE_ABI_MINOR + 1);
  return &d;
}
#elif defined(BROKEN_ABI_1_1_MODEL)
LATEFUSE_EXPORT const LfPluginDescriptor* latefuse_plugin_v1(
    const LfHostApi* host) {
  static LfPluginDescriptor d;
  (void)host;
  d = Descriptor(1, 1);
  return &d;
}
#else
#error "define one BROKEN_* kind"
#endif
