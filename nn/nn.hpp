// tilegrad's nn, in one include: modules and layers, init, losses, optimizers and
// schedules, data and loaders, metrics, safetensors checkpoints.
#pragma once

#include "tilegrad/autograd/autograd.hpp"
#include "tilegrad/nn/amp.hpp"
#include "tilegrad/nn/checkpoint.hpp"
#include "tilegrad/nn/data.hpp"
#include "tilegrad/nn/init.hpp"
#include "tilegrad/nn/io.hpp"
#include "tilegrad/nn/layers.hpp"
#include "tilegrad/nn/loss.hpp"
#include "tilegrad/nn/metrics.hpp"
#include "tilegrad/nn/module.hpp"
#include "tilegrad/nn/optim.hpp"
#include "tilegrad/nn/safetensors.hpp"
