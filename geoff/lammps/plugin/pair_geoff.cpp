/* pair_style geoff (see pair_geoff.h). */

#include "pair_geoff.h"

#include "atom.h"
#include "comm.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "update.h"
#include "utils.h"

#include <cstdlib>
#include <cstring>
#include <exception>

using namespace LAMMPS_NS;

namespace {

// LAMMPS's centroidstressflag value for "different from the two-body stress, not available"
constexpr int CENTROID_NOT_AVAILABLE = 2;
// the forward() contract of geoff.lammps.GeoffLammpsModule this pair style speaks
constexpr int64_t INTERFACE_VERSION = 1;

std::string join(const std::vector<std::string> &items)
{
  std::string out;
  for (const auto &s : items) out += (out.empty() ? "" : " ") + s;
  return out;
}

}    // namespace

PairGeoff::PairGeoff(LAMMPS *lmp) : Pair(lmp)
{
  single_enable = 0;
  restartinfo = 0;
  one_coeff = 1;
  manybody_flag = 1;
  ghostneigh = 1;                  // neighbour lists of ghost atoms too: the graph spans the ghost shell
  no_virial_fdotr_compute = 1;     // the virial comes from the edge vectors (exact, no large-x cancellation)
  centroidstressflag = CENTROID_NOT_AVAILABLE;

  // one torch thread per MPI rank unless OMP_NUM_THREADS says otherwise
  if (std::getenv("OMP_NUM_THREADS") == nullptr) at::set_num_threads(1);
}

PairGeoff::~PairGeoff()
{
  if (allocated) {
    memory->destroy(setflag);
    memory->destroy(cutsq);
    memory->destroy(cutghost);
  }
}

void PairGeoff::allocate()
{
  allocated = 1;
  int n = atom->ntypes + 1;
  memory->create(setflag, n, n, "pair:setflag");
  memory->create(cutsq, n, n, "pair:cutsq");
  memory->create(cutghost, n, n, "pair:cutghost");
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) setflag[i][j] = 0;
  type_species.assign(n, -1);
}

void PairGeoff::load_model(const char *path)
{
  try {
    model = torch::jit::load(path, torch::kCPU);
  } catch (const std::exception &e) {
    error->all(FLERR, "pair_style geoff: cannot load the model file {}: {}", path,
               utils::split_lines(e.what())[0]);
  }
  if (!model.hasattr("interface_version") || !model.hasattr("elements")) {
    error->all(FLERR,
               "pair_style geoff: {} is not a geoff model for LAMMPS (an OpenMM export or another "
               "TorchScript file?); write one with: geoff export POTENTIAL {} --format lammps",
               path, path);
  }
  int64_t version = model.attr("interface_version").toInt();
  if (version != INTERFACE_VERSION) {
    error->all(FLERR,
               "pair_style geoff: {} speaks interface version {}, this plugin version {}; export the model "
               "and build the plugin with the same geoff (geoff export --format lammps; geoff lammps build)",
               path, version, INTERFACE_VERSION);
  }
  model.eval();
  elements.clear();
  for (const auto &e : model.attr("elements").toListRef()) elements.push_back(e.toStringRef());
  cutoff = model.attr("cutoff").toDouble();
  layers = (int) model.attr("layers").toInt();
  model_path = path;
  model_loaded = true;
}

void PairGeoff::settings(int narg, char **arg)
{
  if (narg != 1) error->all(FLERR, "Illegal pair_style geoff command: use pair_style geoff MODEL.pt");
  load_model(arg[0]);
  if (comm->me == 0)
    utils::logmesg(lmp,
                   "pair geoff: {} (elements {}), cutoff {} A, {} message-passing layers "
                   "(receptive field {} A), {} torch thread(s) per rank\n",
                   model_path, join(elements), cutoff, layers, layers * cutoff, at::get_num_threads());
}

void PairGeoff::coeff(int narg, char **arg)
{
  if (!allocated) allocate();
  const int ntypes = atom->ntypes;
  if (narg != 2 + ntypes || strcmp(arg[0], "*") != 0 || strcmp(arg[1], "*") != 0)
    error->all(FLERR,
               "Incorrect args for pair_coeff geoff: use pair_coeff * * followed by one element symbol "
               "per atom type ({} types), e.g. pair_coeff * * {}",
               ntypes, join(elements));
  for (int t = 1; t <= ntypes; t++) {
    const std::string symbol = arg[1 + t];
    int64_t index = -1;
    for (size_t k = 0; k < elements.size(); k++)
      if (elements[k] == symbol) index = (int64_t) k;
    if (index < 0)
      error->all(FLERR,
                 "pair_coeff geoff: element {} (atom type {}) is not known to the model {}, which covers {}; "
                 "map every type to one of these elements, or use a potential trained on {}",
                 symbol, t, model_path, join(elements), symbol);
    type_species[t] = index;
  }
  for (int i = 1; i <= ntypes; i++)
    for (int j = i; j <= ntypes; j++) setflag[i][j] = 1;
}

double PairGeoff::ghost_cutoff() const
{
  return layers * cutoff + neighbor->skin;
}

void PairGeoff::init_style()
{
  if (!model_loaded) error->all(FLERR, "pair_style geoff: no model loaded");
  if (strcmp(update->unit_style, "metal") != 0)
    error->all(FLERR, "pair_style geoff requires units metal (Angstrom, eV), got units {}",
               update->unit_style);
  if (force->newton_pair == 0)
    error->all(FLERR, "pair_style geoff requires newton pair on (forces on ghost atoms go back to their owners)");
  if (comm->mode != 0)
    error->all(FLERR, "pair_style geoff requires comm_modify mode single");

  neighbor->add_request(this, NeighConst::REQ_FULL | NeighConst::REQ_GHOST);

  // ghost atoms out to the receptive field (plus skin): every local atom's energy is then exact
  const double needed = ghost_cutoff();
  if (comm->cutghostuser < needed) {
    comm->cutghostuser = needed;
    if (comm->me == 0)
      utils::logmesg(lmp, "pair geoff: ghost cutoff set to {} A = {} layers x {} A + skin {} A\n", needed,
                     layers, cutoff, neighbor->skin);
  }
}

double PairGeoff::init_one(int i, int j)
{
  cutghost[i][j] = cutghost[j][i] = cutoff;
  return cutoff;
}

void PairGeoff::compute(int eflag, int vflag)
{
  ev_init(eflag, vflag);

  const int nlocal = atom->nlocal;
  const int nall = nlocal + atom->nghost;
  double **x = atom->x;
  double **f = atom->f;
  const int *type = atom->type;

  // the graph: every ordered pair closer than the cutoff, among local and ghost atoms
  const double cutsq_model = cutoff * cutoff;
  const int ntotal = list->inum + list->gnum;
  const int *ilist = list->ilist;
  const int *numneigh = list->numneigh;
  int **firstneigh = list->firstneigh;
  std::vector<int64_t> &src = edge_buffer;
  src.clear();
  std::vector<int64_t> dst;
  dst.reserve(src.capacity());
  for (int ii = 0; ii < ntotal; ii++) {
    const int i = ilist[ii];
    const int *jlist = firstneigh[i];
    for (int jj = 0; jj < numneigh[i]; jj++) {
      const int j = jlist[jj] & NEIGHMASK;
      const double dx = x[j][0] - x[i][0], dy = x[j][1] - x[i][1], dz = x[j][2] - x[i][2];
      if (dx * dx + dy * dy + dz * dz < cutsq_model) {
        src.push_back(i);
        dst.push_back(j);
      }
    }
  }
  const int64_t num_edges = (int64_t) src.size();
  src.insert(src.end(), dst.begin(), dst.end());

  species_buffer.resize(nall);
  for (int i = 0; i < nall; i++) species_buffer[i] = type_species[type[i]];

  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  torch::Tensor positions = torch::from_blob(&x[0][0], {nall, 3}, f64);
  torch::Tensor species = torch::from_blob(species_buffer.data(), {nall}, i64);
  torch::Tensor edges = torch::from_blob(src.data(), {2, num_edges}, i64);

  c10::intrusive_ptr<c10::ivalue::Tuple> out;
  try {
    std::vector<torch::jit::IValue> inputs{positions, species, edges, (int64_t) nlocal, (bool) vflag_atom};
    out = model.forward(inputs).toTuple();
  } catch (const std::exception &e) {
    error->one(FLERR, "pair geoff: model evaluation failed: {}", utils::split_lines(e.what())[0]);
  }
  const auto &res = out->elements();
  torch::Tensor forces = res[2].toTensor().contiguous();
  const double *fp = forces.data_ptr<double>();
  for (int i = 0; i < nall; i++) {
    f[i][0] += fp[3 * i];
    f[i][1] += fp[3 * i + 1];
    f[i][2] += fp[3 * i + 2];
  }
  if (eflag_global) eng_vdwl += res[0].toTensor().item<double>();
  if (eflag_atom) {
    torch::Tensor atomic = res[1].toTensor().contiguous();
    const double *ep = atomic.data_ptr<double>();
    for (int i = 0; i < nlocal; i++) eatom[i] += ep[i];
  }
  if (vflag_global) {
    torch::Tensor w = res[3].toTensor().contiguous();
    const double *wp = w.data_ptr<double>();
    for (int k = 0; k < 6; k++) virial[k] += wp[k];
  }
  if (vflag_atom) {
    torch::Tensor wa = res[4].toTensor().contiguous();
    const double *wp = wa.data_ptr<double>();
    for (int i = 0; i < nall; i++)
      for (int k = 0; k < 6; k++) vatom[i][k] += wp[6 * i + k];
  }
}
