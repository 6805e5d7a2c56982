// tilegrad's nn, in one include: modules and layers, init, losses, optimizers and
// schedules, data and loaders, metrics, safetensors checkpoints.
#pragma once

#include "autograd/autograd.hpp"
#include "nn/amp.hpp"
#include "nn/checkpoint.hpp"
#include "nn/data.hpp"
#include "nn/init.hpp"
#include "nn/io.hpp"
#include "nn/layers.hpp"
#include "nn/loss.hpp"
#include "nn/metrics.hpp"
#include "nn/module.hpp"
#include "nn/optim.hpp"
#include "nn/safetensors.hpp"
