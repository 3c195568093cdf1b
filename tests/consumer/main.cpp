// main.cpp — the installed library's umbrella header, a network, one training step.
#include <cstdio>

#include <nmsnn/nmsnn.hpp>
#include <nmsnn/plot.hpp>
#ifdef CONSUMER_WITH_MPI
#include <nmsnn/mpi.hpp>
#endif

int main() {
  nmsnn::Network net(nmsnn::NetworkSpec::spiking(4, {8}, 2, 16), {nmsnn::Engine::cpu, 7, 1});
  const std::vector<float> x = {0.5f, 1.0f, 0.0f, 2.0f, 1.5f, 0.0f, 0.25f, 1.0f};
  auto pass = net.forward(nmsnn::Input::noisy(x, 2));
  auto loss = nmsnn::nll_log_softmax(pass.logits(), 2, 2, {0, 1});
  net.backward(pass, loss.grad);
  nmsnn::Optimizer opt(net, nmsnn::Adam{1e-2});
  opt.step();
  const std::vector<std::vector<int64_t>> counts = {{3, 1}, {0, 4}};
  if (nmsnn::plot::confusion_matrix_svg(counts, {"a", "b"}).find("<svg") == std::string::npos) return 1;
#ifdef CONSUMER_WITH_MPI
  // Linked, not called: starting MPI outside mpirun is not this test's business.
  std::shared_ptr<nmsnn::Communicator> (*make_mpi)() = &nmsnn::mpi_communicator;
  if (!make_mpi) return 1;
  std::printf("consumer: nmsnn::mpi linked\n");
#endif
  std::printf("consumer ok: loss %.4f\n", loss.value);
  return loss.value > 0 ? 0 : 1;
}
