/* pair_style geoff: a geoff potential exported with `geoff export --format lammps`.

   pair_style geoff model.pt
   pair_coeff * * H O          (one element per LAMMPS atom type)

   Each rank evaluates its local atoms' energies on a graph over local and ghost atoms; the
   ghost shell is widened to layers x cutoff + skin (the model's receptive field), so results
   equal a single-process evaluation on any number of ranks. Needs newton pair on and metal units. */

#ifndef GEOFF_PAIR_GEOFF_H
#define GEOFF_PAIR_GEOFF_H

#include <ATen/Parallel.h>
#include <torch/script.h>

#include "pair.h"

#include <string>
#include <vector>

namespace LAMMPS_NS {

class PairGeoff : public Pair {
 public:
  PairGeoff(class LAMMPS *);
  ~PairGeoff() override;

  void compute(int eflag, int vflag) override;
  void settings(int narg, char **arg) override;
  void coeff(int narg, char **arg) override;
  void init_style() override;
  double init_one(int i, int j) override;

 protected:
  torch::jit::Module model;
  std::string model_path;
  std::vector<std::string> elements;    // the model's species, in species-index order
  std::vector<int64_t> type_species;    // LAMMPS type (1..ntypes) -> species index, -1 unset
  double cutoff = 0.0;                  // model cutoff, Angstrom
  int layers = 0;                       // message-passing rounds
  bool model_loaded = false;

  // reused between steps
  std::vector<int64_t> edge_buffer;
  std::vector<int64_t> species_buffer;

  void allocate();
  void load_model(const char *path);
  double ghost_cutoff() const;
};

}    // namespace LAMMPS_NS

#endif
