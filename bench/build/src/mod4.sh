#!/bin/sh
# module 4
echo "module 4"
