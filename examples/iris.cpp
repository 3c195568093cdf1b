// iris.cpp — the seed's multiclass demo: iris species from four measurements, a spiking
// network (T = 64, Adam lr 1e-3, as the seed) against its non-spiking twin, on a seeded 80/20
// split, in a few lines of the C++ API.
//   build/examples/iris [seed]
#include <cstdio>
#include <string>

#include "nmsnn/nmsnn.hpp"

int main(int argc, char** argv) {
  const uint64_t seed = argc > 1 ? std::stoull(argv[1]) : 1;
  nmsnn::CsvOptions csv;
  csv.target = "target";
  const nmsnn::Dataset all = nmsnn::load_csv(NMSNN_SOURCE_DIR "/data/csv/iris_data.csv", csv);
  const nmsnn::Split split = nmsnn::split_indices(all.count, 0.2, 0.0, seed, &all.labels);
  const nmsnn::Dataset train = nmsnn::subset(all, split.train), test = nmsnn::subset(all, split.test);

  nmsnn::TrainOptions opts;  // Adam lr 1e-3, batch 32, 100 epochs
  opts.optimizer = nmsnn::Adam{1e-3};
  opts.batch_size = 32;
  opts.epochs = 100;
  for (bool spiking : {true, false}) {
    nmsnn::NetworkDescription d;
    d.spec = spiking ? nmsnn::NetworkSpec::spiking(4, {100}, 3, 64) : nmsnn::NetworkSpec::mlp(4, {100}, 3);
    if (!spiking) d.encoding = nmsnn::Input::Kind::repeated;
    nmsnn::Model model = nmsnn::Model::make(nmsnn::TaskKind::classification, d, {nmsnn::Engine::cpu, seed});
    model.fit(train, opts);  // standardises with the training split's statistics
    const nmsnn::ModelEvaluation e = model.evaluate(test);
    std::printf("%-12s test accuracy %.4f  macro F1 %.4f  AUC %.4f\n",
                spiking ? "spiking" : "non-spiking", e.classes.accuracy, e.classes.macro_f1, e.auc);
  }
}
