// The opaque grey_config of grey.h is this struct.
#pragma once

#include "config/config.hpp"
#include "grey.h"

struct grey_config {
    grey::config::Config impl;
};
