"""deploysim.demo"""
