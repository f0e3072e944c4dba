/* Entry point of geoffplugin.so: `plugin load geoffplugin.so` registers pair_style geoff. */

#include "lammpsplugin_abi.h"
#include "pair_geoff.h"

#include "lammps.h"

#ifndef GEOFF_LAMMPS_VERSION
#define GEOFF_LAMMPS_VERSION nullptr
#endif

using namespace LAMMPS_NS;

static Pair *create_pair_geoff(LAMMPS *lmp)
{
  return new PairGeoff(lmp);
}

extern "C" void lammpsplugin_init(void *lmp, void *handle, void *regfunc)
{
  lammpsplugin_t plugin;
  plugin.version = GEOFF_LAMMPS_VERSION;
  plugin.style = "pair";
  plugin.name = "geoff";
  plugin.info = "geoff machine-learned potential (EGNN / SE(3)-Transformer), TorchScript through libtorch";
  plugin.author = "the geoff developers";
  plugin.creator.v1 = (lammpsplugin_factory1 *) &create_pair_geoff;
  plugin.handle = handle;
  (*(lammpsplugin_regfunc) regfunc)(&plugin, lmp);
}
