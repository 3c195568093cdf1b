// synthetic_binary.cpp — the seed's binary-classification demo: a synthetic two-class problem,
// a spiking classifier with one output logit (BCE-with-logits) and its non-spiking twin.
//
//   build/examples/synthetic_binary [--samples N] [--noise-features N] [--epochs N]
//                                   [--time-steps T] [--csv FILE] [--seed S] [--data-seed S]
//                                   [--device cpu|cuda]
//
// The data follow scikit-learn's make_classification (as the seed calls it: 10,000 samples,
// 2 classes of equal weight, 20 features of which 2 informative and 2 redundant, 2 clusters per
// class, class_sep 1, 1% of labels flipped), generated here from that published algorithm:
// cluster centres on the vertices of a hypercube of side 2*class_sep in the informative
// subspace, Gaussian points mixed by a random linear map per cluster, redundant features as
// random linear combinations of the informative ones, the rest standard normal noise. The seed
// then appends 1000 x n_features standard-normal noise columns ("to make the problem harder"):
// 20,000 columns at T = 500 is days of CPU time, so this example appends --noise-features
// columns (default 40: with 4,800 training rows, 100 already make both models overfit the
// noise). Split as the seed does: 40% test; of the rest 20% validation. The data and the split
// come from --data-seed (fixed, like the seed's random_state; how hard the generated problem is
// depends on it), the weights, masks and shuffling from --seed.
// Spiking model as the seed's: 64 hidden neurons, T = 500, Adam lr 1e-3, batch 64; its logit is
// read linearly from the hidden layer's spikes (`nmsnn train --task binary` does the same; an
// output neuron's state, the seed's readout, is bounded by its threshold and trains poorly here).
#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "nmsnn/nmsnn.hpp"

namespace {

// make_classification's algorithm for two classes; returns x [n, features] and labels.
void make_classification(int n, int noise_features, uint64_t seed, std::vector<float>& x,
                         std::vector<int>& y, int& features) {
  const int informative = 2, redundant = 2, useless = 16, clusters = 4;  // 2 per class
  const double class_sep = 1.0, flip = 0.01;
  features = informative + redundant + useless + noise_features;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0, 1);
  std::uniform_real_distribution<double> uniform(0, 1);
  // Cluster centres: distinct vertices of the informative hypercube, side 2*class_sep.
  std::vector<int> vertices = {0, 1, 2, 3};
  std::shuffle(vertices.begin(), vertices.end(), rng);
  x.assign(size_t(n) * features, 0.0f);
  y.assign(n, 0);
  std::vector<std::vector<double>> A(clusters, std::vector<double>(informative * informative));
  for (auto& a : A)
    for (auto& v : a) v = 2 * uniform(rng) - 1;
  std::vector<double> B(informative * redundant);
  for (auto& v : B) v = 2 * uniform(rng) - 1;
  for (int s = 0; s < n; ++s) {
    const int k = s % clusters;  // cluster k belongs to class k % 2
    y[s] = k % 2;
    double z[informative], inf[informative] = {0, 0};
    for (double& v : z) v = normal(rng);
    for (int i = 0; i < informative; ++i) {
      for (int j = 0; j < informative; ++j) inf[i] += z[j] * A[k][j * informative + i];
      inf[i] += ((vertices[k] >> i) & 1 ? class_sep : -class_sep);
    }
    float* row = x.data() + size_t(s) * features;
    for (int i = 0; i < informative; ++i) row[i] = float(inf[i]);
    for (int r = 0; r < redundant; ++r) {
      double v = 0;
      for (int i = 0; i < informative; ++i) v += inf[i] * B[i * redundant + r];
      row[informative + r] = float(v);
    }
    for (int f = informative + redundant; f < features; ++f) row[f] = float(normal(rng));
    if (uniform(rng) < flip) y[s] = uniform(rng) < 0.5 ? 0 : 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  int samples = 10000, noise = 40, epochs = 20, time_steps = 500;
  uint64_t seed = 1, data_seed = 1;
  std::string csv, device = "cpu";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "usage: %s [--samples N] [--noise-features N] [--epochs N] "
                           "[--time-steps T] [--csv FILE] [--seed S] [--data-seed S] "
                           "[--device cpu|cuda]\n", argv[0]);
      return 2;
    }
    const std::string v = argv[++i];
    if (a == "--samples") samples = std::stoi(v);
    else if (a == "--noise-features") noise = std::stoi(v);
    else if (a == "--epochs") epochs = std::stoi(v);
    else if (a == "--time-steps") time_steps = std::stoi(v);
    else if (a == "--csv") csv = v;
    else if (a == "--seed") seed = std::stoull(v);
    else if (a == "--data-seed") data_seed = std::stoull(v);
    else if (a == "--device") device = v;
    else {
      std::fprintf(stderr, "unknown flag %s\n", a.c_str());
      return 2;
    }
  }
  try {
    const nmsnn::Engine engine = nmsnn::parse_engine(device);
    nmsnn::Dataset all;
    all.name = "synthetic-binary";
    all.count = samples;
    make_classification(samples, noise, data_seed, all.x, all.labels, all.features);
    all.classes = 2;
    all.class_names = {"0", "1"};
    if (!csv.empty()) {  // the data as a CSV file, for `nmsnn train --task binary`
      std::ofstream out(csv);
      for (int f = 0; f < all.features; ++f) out << "x" << f << ",";
      out << "label\n";
      for (int s = 0; s < samples; ++s) {
        for (int f = 0; f < all.features; ++f) out << all.x[size_t(s) * all.features + f] << ",";
        out << all.labels[s] << "\n";
      }
    }
    // The seed's split: 40% test, then 20% of the rest for validation.
    const nmsnn::Split split = nmsnn::split_indices(samples, 0.4, 0.12, data_seed, &all.labels);
    const nmsnn::Dataset train = nmsnn::subset(all, split.train);
    const nmsnn::Dataset valid = nmsnn::subset(all, split.validation);
    const nmsnn::Dataset test = nmsnn::subset(all, split.test);
    std::printf("synthetic binary problem: %d samples, %d features (%d noise columns); "
                "%d train / %d validation / %d test\n",
                samples, all.features, noise, train.count, valid.count, test.count);

    nmsnn::TrainOptions opts;
    opts.epochs = epochs;
    opts.batch_size = 64;
    opts.optimizer = nmsnn::Adam{1e-3};
    opts.on_epoch = [](const nmsnn::EpochStats& e) {
      std::fprintf(stderr, "  epoch %d: train loss %.4f acc %.4f, validation acc %.4f (%.0f samples/s)\n",
                   e.epoch, e.train_loss, e.train_accuracy, e.eval.accuracy, e.samples_per_second);
    };
    struct Result {
      const char* name;
      nmsnn::ModelEvaluation e;
    };
    std::vector<Result> results;
    for (bool spiking : {true, false}) {
      nmsnn::NetworkDescription d;
      if (spiking) {
        d.spec = nmsnn::NetworkSpec::spiking(all.features, {64}, 1, time_steps);
        d.spec.layers.back() = nmsnn::Dense{1};  // linear readout of the spikes
      } else {
        d.spec = nmsnn::NetworkSpec::mlp(all.features, {64}, 1);
        d.encoding = nmsnn::Input::Kind::repeated;
      }
      std::fprintf(stderr, "%s\n", spiking ? "spiking (64 hidden, T steps)" : "non-spiking MLP");
      nmsnn::Model m = nmsnn::Model::make(nmsnn::TaskKind::binary, d, {engine, seed});
      m.fit(train, opts, &valid);
      results.push_back({spiking ? "spiking" : "non-spiking", m.evaluate(test)});
    }
    std::printf("%-12s %-9s %-9s %-9s\n", "model", "accuracy", "AUC", "F1(1)");
    for (const Result& r : results)
      std::printf("%-12s %-9.4f %-9.4f %-9.4f\n", r.name, r.e.classes.accuracy, r.e.auc,
                  r.e.classes.f1[1]);
  } catch (const nmsnn::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
