// house_prices.cpp — the seed's regression demo done right: a spiking regressor (its
// time-averaged spikes read out linearly, trained with MSE on standardised prices) against its
// non-spiking twin, test R2 over three seeded 80/20 splits. (The seed's "spiking regressor" fed
// raw features to a plain MLP and never used its spiking layers.)
//   build/examples/house_prices
#include <cstdio>

#include "nmsnn/nmsnn.hpp"

int main() {
  nmsnn::CsvOptions csv;
  csv.target = "house_price";
  csv.task = nmsnn::TaskKind::regression;
  const nmsnn::Dataset all = nmsnn::load_csv(NMSNN_SOURCE_DIR "/data/csv/house_price_data.csv", csv);
  nmsnn::TrainOptions opts;  // the CLI's tabular preset
  opts.optimizer = nmsnn::Adam{1e-3};
  opts.batch_size = 32;
  opts.epochs = 100;
  for (bool spiking : {true, false}) {
    double mean_r2 = 0;
    std::printf("%-12s", spiking ? "spiking" : "non-spiking");
    for (uint64_t seed : {1, 2, 3}) {
      const nmsnn::Split split = nmsnn::split_indices(all.count, 0.2, 0.0, seed);
      nmsnn::NetworkDescription d;
      if (spiking) {
        d.spec = nmsnn::NetworkSpec::spiking(3, {100}, 1, 64);
        d.spec.layers.back() = nmsnn::Dense{1};  // linear readout of the spiking layer
      } else {
        d.spec = nmsnn::NetworkSpec::mlp(3, {100}, 1);
        d.encoding = nmsnn::Input::Kind::repeated;
      }
      nmsnn::Model model = nmsnn::Model::make(nmsnn::TaskKind::regression, d, {nmsnn::Engine::cpu, seed});
      model.fit(nmsnn::subset(all, split.train), opts);
      const nmsnn::ModelEvaluation e = model.evaluate(nmsnn::subset(all, split.test));
      std::printf("  seed %d: R2 %.4f RMSE %.3f", int(seed), e.regression.r2, e.regression.rmse);
      mean_r2 += e.regression.r2 / 3;
    }
    std::printf("  | mean test R2 %.4f\n", mean_r2);
  }
}
